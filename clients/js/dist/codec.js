// How frames travel on the socket: the JSON codec by default, or any codec the caller passes.
import { JSON_SUBPROTOCOL } from "./generated.js";
export const jsonCodec = {
    subprotocol: JSON_SUBPROTOCOL,
    encode: (frame) => JSON.stringify(frame),
    decode: (data) => JSON.parse(typeof data === "string" ? data : new TextDecoder().decode(data)),
};
