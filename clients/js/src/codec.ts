// How frames travel on the socket: the JSON codec by default, or any codec the caller passes.

import { JSON_SUBPROTOCOL } from "./generated.js";

/** How frames travel; the default is JSON text (`cimhub.json.v1`). Pass a MessagePack codec to use `cimhub.msgpack.v1`. */
export interface Codec {
  subprotocol: string;
  encode(frame: unknown): string | ArrayBufferLike | ArrayBufferView;
  decode(data: string | ArrayBuffer): unknown;
}

export const jsonCodec: Codec = {
  subprotocol: JSON_SUBPROTOCOL,
  encode: (frame) => JSON.stringify(frame),
  decode: (data) => JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data)),
};
