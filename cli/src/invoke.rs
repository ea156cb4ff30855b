//! Invoking a method with dynamic messages: JSON requests in, JSON responses out.

use std::io::Read;

use anygrpc_tokio::{CallOptions, Channel, Code, Metadata, Status};
use prost::Message;
use prost_reflect::{DynamicMessage, MethodDescriptor, SerializeOptions};

use crate::error::CliError;
use crate::raw::RawMessage;

/// How to print what the call sends and receives.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Printing {
    /// Print default-valued fields.
    pub(crate) emit_defaults: bool,
    /// Print headers, trailers and counts too (`-v`).
    pub(crate) verbose: bool,
}

/// The request messages of `-d` (`@`: stdin; none given: one empty message).
pub(crate) fn requests(
    method: &MethodDescriptor,
    data: Option<&str>,
) -> Result<Vec<RawMessage>, CliError> {
    let text = match data {
        None => return Ok(vec![RawMessage::default()]),
        Some("@") => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| CliError::usage(format!("reading stdin: {e}")))?;
            text
        }
        Some(text) => text.to_owned(),
    };
    let mut messages = Vec::new();
    for value in serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>() {
        let value = value.map_err(|e| CliError::usage(format!("-d is not JSON: {e}")))?;
        let message = DynamicMessage::deserialize(method.input(), value).map_err(|e| {
            CliError::usage(format!(
                "-d does not fit {}: {e}",
                method.input().full_name()
            ))
        })?;
        messages.push(RawMessage::new(message.encode_to_vec()));
    }
    Ok(messages)
}

/// Parses `name: value` headers into metadata; a `-bin` header's value is base64 (standard or
/// URL-safe, padded or not), as grpcurl takes it.
pub(crate) fn metadata(headers: &[String]) -> Result<Metadata, CliError> {
    let mut metadata = Metadata::new();
    for header in headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| CliError::usage(format!("-H {header:?} is not 'name: value'")))?;
        let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
        let added = if name.ends_with("-bin") {
            metadata.append_bin(
                &name,
                decode_base64(value).ok_or_else(|| {
                    CliError::usage(format!("-H {header:?}: a -bin value must be base64"))
                })?,
            )
        } else {
            metadata.append(&name, value)
        };
        added.map_err(|e| CliError::usage(format!("-H {header:?}: {e}")))?;
    }
    Ok(metadata)
}

/// Calls `method` with `requests`, printing each response as it arrives.
pub(crate) async fn invoke(
    channel: &Channel,
    method: &MethodDescriptor,
    requests: Vec<RawMessage>,
    options: CallOptions,
    printing: Printing,
) -> Result<(), CliError> {
    if !method.is_client_streaming() && requests.len() != 1 {
        return Err(CliError::usage(format!(
            "{} takes one request message, -d gave {}",
            method.full_name(),
            requests.len()
        )));
    }
    let path = format!("/{}/{}", method.parent_service().full_name(), method.name());
    if printing.verbose {
        println!(
            "\nResolved method descriptor:\n{}\n",
            crate::describe::method_text(method)
        );
    }
    let mut call = channel
        .stream_stream::<RawMessage, RawMessage>(path)
        .call_with(options);
    let sent = requests.len();
    for request in &requests {
        if call.write(request).await.is_err() {
            break;
        }
    }
    let _ = call.done_writing().await;
    let mut received = 0usize;
    let mut headers_printed = false;
    let failure = loop {
        match call.read().await {
            Some(Ok(raw)) => {
                if printing.verbose && !headers_printed {
                    print_metadata("Response headers received", &call.initial_metadata().await);
                    println!("\nResponse contents:");
                    headers_printed = true;
                }
                let message = DynamicMessage::decode(method.output(), raw.bytes.as_slice())
                    .map_err(|e| CliError::Other(format!("response does not decode: {e}")))?;
                println!("{}", to_json(&message, printing.emit_defaults)?);
                received += 1;
            }
            Some(Err(e)) => break Some(e.status().clone()),
            None => break None,
        }
    };
    let status = match failure {
        Some(status) => status,
        None => call.status().await,
    };
    if printing.verbose {
        if !headers_printed {
            print_metadata("Response headers received", &call.initial_metadata().await);
        }
        print_metadata(
            "Response trailers received",
            &call.trailing_metadata().await,
        );
        println!(
            "Sent {sent} request{} and received {received} response{}",
            plural(sent),
            plural(received)
        );
    }
    if status.code() != Code::Ok {
        return Err(CliError::Rpc(status));
    }
    if !method.is_server_streaming() && received != 1 {
        return Err(CliError::Rpc(Status::new(
            Code::Internal,
            format!("a unary response carried {received} messages"),
        )));
    }
    Ok(())
}

/// `text` decoded as base64 in any of the four common alphabets and paddings.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(text).ok())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The message as protobuf JSON, pretty with 2-space indents, camelCase names.
pub(crate) fn to_json(message: &DynamicMessage, emit_defaults: bool) -> Result<String, CliError> {
    let options = SerializeOptions::new().skip_default_fields(!emit_defaults);
    let mut out = Vec::new();
    let mut serializer = serde_json::Serializer::pretty(&mut out);
    message
        .serialize_with_options(&mut serializer, &options)
        .map_err(|e| CliError::Other(format!("response to JSON: {e}")))?;
    String::from_utf8(out).map_err(|e| CliError::Other(e.to_string()))
}

fn print_metadata(title: &str, metadata: &Metadata) {
    println!("\n{title}:");
    if metadata.is_empty() {
        println!("(empty)");
    }
    for (key, value) in metadata.iter() {
        match value.as_str() {
            Some(text) if !key.is_binary() => println!("{}: {text}", key.as_str()),
            // Binary values print as base64, as grpcurl prints them.
            _ => {
                use base64::Engine as _;
                let text = base64::engine::general_purpose::STANDARD.encode(value.as_bytes());
                println!("{}: {text}", key.as_str())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bin_headers_are_base64_in_any_alphabet_and_text_headers_are_as_given() {
        let headers = [
            "X-Trace: abc def".to_owned(),
            "a-bin: AQID".to_owned(),
            "b-bin: _-8".to_owned(),
            "c-bin: +/8=".to_owned(),
        ];
        let metadata = metadata(&headers).expect("parses");
        assert_eq!(metadata.get("x-trace"), Some("abc def"));
        assert_eq!(
            metadata.get_bin("a-bin").map(|v| &v[..]),
            Some(&[1u8, 2, 3][..])
        );
        assert_eq!(
            metadata.get_bin("b-bin").map(|v| &v[..]),
            Some(&[0xffu8, 0xef][..])
        );
        assert_eq!(
            metadata.get_bin("c-bin").map(|v| &v[..]),
            Some(&[0xfbu8, 0xff][..])
        );
        for bad in ["no colon", "d-bin: not base64!"] {
            let error = metadata_error(bad);
            assert!(
                error.contains(bad.split(':').next().unwrap_or(bad)),
                "{error}"
            );
        }
    }

    fn metadata_error(header: &str) -> String {
        match metadata(&[header.to_owned()]) {
            Err(CliError::Usage(message)) => message,
            other => panic!("{header:?} gave {other:?}"),
        }
    }
}
