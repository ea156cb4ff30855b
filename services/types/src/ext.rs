//! Extension traits: a [`Status`] made with [`ErrorDetails`], and the details read back from a
//! `Status` or an [`RpcError`].

use anygrpc::{Code, RpcError, Status};
use prost::Message;

use crate::pb;
use crate::{DetailsError, ErrorDetails};

/// Rich details on anygrpc's [`Status`].
pub trait StatusExt: Sized {
    /// A status with `code`, `message` and `details`, packed in a `google.rpc.Status` with the
    /// same code and message (so they always agree) as `grpc-status-details-bin`.
    fn with_error_details(code: Code, message: impl Into<String>, details: &ErrorDetails) -> Self;

    /// The details carried in `grpc-status-details-bin`: none when the trailer is absent.
    /// The status's own code and message stay as they are whatever this returns.
    fn error_details(&self) -> Result<ErrorDetails, DetailsError>;

    /// The whole `google.rpc.Status` in `grpc-status-details-bin`, as sent, without checking
    /// it against the call's code and message (`None` when the trailer is absent).
    fn rpc_status(&self) -> Result<Option<pb::Status>, DetailsError>;
}

impl StatusExt for Status {
    fn with_error_details(code: Code, message: impl Into<String>, details: &ErrorDetails) -> Self {
        let message = message.into();
        let rich = pb::Status {
            code: code.as_i32(),
            message: message.clone(),
            details: details.to_anys(),
        };
        Status::new(code, message).with_details(rich.encode_to_vec())
    }

    fn error_details(&self) -> Result<ErrorDetails, DetailsError> {
        let Some(rich) = self.rpc_status()? else {
            return Ok(ErrorDetails::new());
        };
        let details = ErrorDetails::from_anys(rich.details)?;
        if rich.code != self.code().as_i32() || rich.message != self.message() {
            return Err(DetailsError::Disagrees {
                call_code: self.code(),
                inner_code: rich.code,
                inner_message: rich.message,
                details: Box::new(details),
            });
        }
        Ok(details)
    }

    fn rpc_status(&self) -> Result<Option<pb::Status>, DetailsError> {
        if self.details().is_empty() {
            return Ok(None);
        }
        pb::Status::decode(self.details().as_ref())
            .map(Some)
            .map_err(|e| DetailsError::Decode {
                what: "google.rpc.Status".to_string(),
                reason: e.to_string(),
            })
    }
}

/// Rich details on a client's [`RpcError`], read from its status.
pub trait RpcErrorExt {
    /// The details the server sent (see [`StatusExt::error_details`]).
    fn error_details(&self) -> Result<ErrorDetails, DetailsError>;
}

impl RpcErrorExt for RpcError {
    fn error_details(&self) -> Result<ErrorDetails, DetailsError> {
        self.status().error_details()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ErrorDetails {
        let mut d = ErrorDetails::new();
        d.set_error("QUOTA", "example.com", [("k".to_string(), "v".to_string())])
            .add_help_link("docs", "https://example.com/help");
        d
    }

    #[test]
    fn a_status_made_with_details_reads_them_back() {
        let status = Status::with_error_details(Code::ResourceExhausted, "slow down", &sample());
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(status.message(), "slow down");
        assert_eq!(status.error_details(), Ok(sample()));
        let rich = status.rpc_status().unwrap().expect("a google.rpc.Status");
        assert_eq!((rich.code, rich.message.as_str()), (8, "slow down"));
    }

    #[test]
    fn no_trailer_is_no_details() {
        let status = Status::not_found("gone");
        assert_eq!(status.error_details(), Ok(ErrorDetails::new()));
        assert_eq!(status.rpc_status(), Ok(None));
    }

    #[test]
    fn a_trailer_that_does_not_decode_is_an_error_and_the_status_stays() {
        // A length-delimited field 2 (message) claiming 5 bytes with only 1 there.
        let status = Status::unavailable("down").with_details(vec![0x12, 0x05, b'x']);
        let err = status.error_details().unwrap_err();
        assert!(
            matches!(&err, DetailsError::Decode { what, .. } if what == "google.rpc.Status"),
            "{err}"
        );
        assert_eq!(
            (status.code(), status.message()),
            (Code::Unavailable, "down")
        );
    }

    #[test]
    fn a_standard_detail_that_does_not_decode_is_an_error() {
        let rich = pb::Status {
            code: Code::Internal.as_i32(),
            message: "x".into(),
            details: vec![prost_types::Any {
                type_url: "type.googleapis.com/google.rpc.ErrorInfo".into(),
                value: vec![0x0a, 0x09, b'a'],
            }],
        };
        let status = Status::internal("x").with_details(rich.encode_to_vec());
        let err = status.error_details().unwrap_err();
        assert!(
            matches!(&err, DetailsError::Decode { what, .. } if what.ends_with("google.rpc.ErrorInfo")),
            "{err}"
        );
    }

    #[test]
    fn an_inner_code_or_message_that_disagrees_is_reported_with_the_details() {
        for (code, message) in [(Code::NotFound, "same"), (Code::Aborted, "other")] {
            let inner = Status::with_error_details(code, message, &sample());
            let status = Status::aborted("same").with_details(inner.details().clone());
            match status.error_details() {
                Err(DetailsError::Disagrees {
                    call_code,
                    inner_code,
                    inner_message,
                    details,
                }) => {
                    assert_eq!(call_code, Code::Aborted);
                    assert_eq!(inner_code, code.as_i32());
                    assert_eq!(inner_message, message);
                    assert_eq!(*details, sample());
                }
                other => panic!("{code:?}/{message}: expected Disagrees, got {other:?}"),
            }
            assert_eq!((status.code(), status.message()), (Code::Aborted, "same"));
        }
    }
}
