//! The messages of `helloworld.Greeter` (grpc/grpc examples/protos/helloworld.proto), written
//! by hand with `prost` derives so no code generator is needed.

/// `/helloworld.Greeter/SayHello`: one `HelloRequest` in, one `HelloReply` out.
pub const SAY_HELLO: &str = "/helloworld.Greeter/SayHello";

/// `message HelloRequest { string name = 1; }`
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct HelloRequest {
    /// Who to greet.
    #[prost(string, tag = "1")]
    pub name: String,
}

/// `message HelloReply { string message = 1; }`
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct HelloReply {
    /// The greeting.
    #[prost(string, tag = "1")]
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn wire_format_is_field_one_length_delimited() {
        let request = HelloRequest { name: "Ada".into() };
        // Tag 1, wire type 2 (0x0a), length 3, then the UTF-8 bytes.
        assert_eq!(request.encode_to_vec(), b"\x0a\x03Ada");
        let reply = HelloReply::decode(&b"\x0a\x03Ada"[..]).unwrap();
        assert_eq!(reply.message, "Ada");
        // proto3 default: an empty name is not on the wire at all.
        assert!(HelloRequest::default().encode_to_vec().is_empty());
    }
}
