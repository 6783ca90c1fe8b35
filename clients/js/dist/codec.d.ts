/** How frames travel; the default is JSON text (`cimhub.json.v1`). Pass a MessagePack codec to use `cimhub.msgpack.v1`. */
export interface Codec {
    subprotocol: string;
    encode(frame: unknown): string | ArrayBufferLike | ArrayBufferView;
    decode(data: string | ArrayBuffer): unknown;
}
export declare const jsonCodec: Codec;
