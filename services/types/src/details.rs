//! [`ErrorDetails`]: the standard details of a `google.rpc.Status`, one slot per type, and the
//! others kept as they came.

use std::time::Duration;

use prost::Message;
use prost_types::Any;

use crate::DetailsError;
use crate::pb::{
    BadRequest, DebugInfo, ErrorInfo, Help, LocalizedMessage, PreconditionFailure, QuotaFailure,
    RequestInfo, ResourceInfo, RetryInfo, bad_request, help, precondition_failure, quota_failure,
};

/// A standard detail message of `google/rpc/error_details.proto`, known by its type URL.
pub trait StandardDetail: Message + Default + Sized {
    /// The type URL it is packed under in a `google.protobuf.Any`.
    const TYPE_URL: &'static str;

    /// This detail packed in an `Any`.
    fn to_any(&self) -> Any {
        Any {
            type_url: Self::TYPE_URL.to_string(),
            value: self.encode_to_vec(),
        }
    }

    /// The detail in `any`: `None` when its type URL is another type's, an error when it is
    /// this type's but the bytes do not decode.
    fn from_any(any: &Any) -> Option<Result<Self, DetailsError>> {
        (any.type_url == Self::TYPE_URL).then(|| {
            Self::decode(any.value.as_slice()).map_err(|e| DetailsError::Decode {
                what: Self::TYPE_URL.to_string(),
                reason: e.to_string(),
            })
        })
    }
}

/// Declares the slots of [`ErrorDetails`]: a field, a getter, a mutable getter and a setter per
/// standard type, and its `StandardDetail` impl, in the order they are packed.
macro_rules! slots {
    ($($ty:ident, $field:ident, $set:ident, $mut:ident, $name:literal;)*) => {
        $(
            impl StandardDetail for $ty {
                const TYPE_URL: &'static str = concat!("type.googleapis.com/google.rpc.", $name);
            }
        )*

        /// The details of a failing call: at most one of each standard type of
        /// `google/rpc/error_details.proto`, plus any others, kept as `Any`s.
        ///
        /// Packed in that order (the standard types as below, then the others) into the
        /// `google.rpc.Status` of `grpc-status-details-bin`.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct ErrorDetails {
            $($field: Option<$ty>,)*
            other: Vec<Any>,
        }

        impl ErrorDetails {
            $(
                #[doc = concat!("The `google.rpc.", $name, "` detail, if there is one.")]
                pub fn $field(&self) -> Option<&$ty> {
                    self.$field.as_ref()
                }

                #[doc = concat!("The `google.rpc.", $name, "` detail to change, made empty if there was none.")]
                pub fn $mut(&mut self) -> &mut $ty {
                    self.$field.get_or_insert_with(Default::default)
                }

                #[doc = concat!("Sets the `google.rpc.", $name, "` detail, replacing any earlier one.")]
                pub fn $set(&mut self, detail: $ty) -> &mut Self {
                    self.$field = Some(detail);
                    self
                }
            )*

            /// Every detail packed as `Any`s: the standard ones set, then the others.
            pub fn to_anys(&self) -> Vec<Any> {
                let mut anys = Vec::new();
                $(if let Some(d) = &self.$field { anys.push(d.to_any()); })*
                anys.extend(self.other.iter().cloned());
                anys
            }

            /// The details in `anys`. A standard type whose bytes do not decode is an error;
            /// a second detail of a type already seen, and any type not standard, is kept in
            /// [`other`](Self::other).
            pub fn from_anys(anys: impl IntoIterator<Item = Any>) -> Result<Self, DetailsError> {
                let mut details = Self::default();
                'next: for any in anys {
                    $(
                        if details.$field.is_none() {
                            if let Some(decoded) = $ty::from_any(&any) {
                                details.$field = Some(decoded?);
                                continue 'next;
                            }
                        }
                    )*
                    details.other.push(any);
                }
                Ok(details)
            }
        }
    };
}

slots! {
    ErrorInfo, error_info, set_error_info, error_info_mut, "ErrorInfo";
    RetryInfo, retry_info, set_retry_info, retry_info_mut, "RetryInfo";
    DebugInfo, debug_info, set_debug_info, debug_info_mut, "DebugInfo";
    QuotaFailure, quota_failure, set_quota_failure, quota_failure_mut, "QuotaFailure";
    PreconditionFailure, precondition_failure, set_precondition_failure, precondition_failure_mut, "PreconditionFailure";
    BadRequest, bad_request, set_bad_request, bad_request_mut, "BadRequest";
    RequestInfo, request_info, set_request_info, request_info_mut, "RequestInfo";
    ResourceInfo, resource_info, set_resource_info, resource_info_mut, "ResourceInfo";
    Help, help, set_help, help_mut, "Help";
    LocalizedMessage, localized_message, set_localized_message, localized_message_mut, "LocalizedMessage";
}

impl ErrorDetails {
    /// No details.
    pub fn new() -> Self {
        Self::default()
    }

    /// `true` when there is no detail at all.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The details of types that are not standard (or repeat a standard type), as they came.
    pub fn other(&self) -> &[Any] {
        &self.other
    }

    /// Adds a detail of a type that is not standard, packed by the caller.
    pub fn add_other(&mut self, any: Any) -> &mut Self {
        self.other.push(any);
        self
    }

    /// Sets an `ErrorInfo` with `reason` in `domain` and `metadata`.
    pub fn set_error(
        &mut self,
        reason: impl Into<String>,
        domain: impl Into<String>,
        metadata: impl IntoIterator<Item = (String, String)>,
    ) -> &mut Self {
        self.set_error_info(ErrorInfo {
            reason: reason.into(),
            domain: domain.into(),
            metadata: metadata.into_iter().collect(),
        })
    }

    /// Sets a `RetryInfo` asking the client to wait `delay` (seconds past `i64::MAX` saturate).
    pub fn set_retry_delay(&mut self, delay: Duration) -> &mut Self {
        let delay = prost_types::Duration {
            seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
            // Below 10^9, so it fits.
            nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
        };
        self.set_retry_info(RetryInfo {
            retry_delay: Some(delay),
        })
    }

    /// Adds a violation (what was exceeded, and how) to the `QuotaFailure`.
    pub fn add_quota_violation(
        &mut self,
        subject: impl Into<String>,
        description: impl Into<String>,
    ) -> &mut Self {
        self.quota_failure_mut()
            .violations
            .push(quota_failure::Violation {
                subject: subject.into(),
                description: description.into(),
                ..Default::default()
            });
        self
    }

    /// Adds a violation (its kind, what failed, and how) to the `PreconditionFailure`.
    pub fn add_precondition_violation(
        &mut self,
        kind: impl Into<String>,
        subject: impl Into<String>,
        description: impl Into<String>,
    ) -> &mut Self {
        self.precondition_failure_mut()
            .violations
            .push(precondition_failure::Violation {
                r#type: kind.into(),
                subject: subject.into(),
                description: description.into(),
            });
        self
    }

    /// Adds a field violation (the field's path, and why) to the `BadRequest`.
    pub fn add_bad_request_violation(
        &mut self,
        field: impl Into<String>,
        description: impl Into<String>,
    ) -> &mut Self {
        self.bad_request_mut()
            .field_violations
            .push(bad_request::FieldViolation {
                field: field.into(),
                description: description.into(),
                ..Default::default()
            });
        self
    }

    /// Adds a link (what it leads to, and its URL) to the `Help`.
    pub fn add_help_link(
        &mut self,
        description: impl Into<String>,
        url: impl Into<String>,
    ) -> &mut Self {
        self.help_mut().links.push(help::Link {
            description: description.into(),
            url: url.into(),
        });
        self
    }
}

#[cfg(test)]
#[path = "details_tests.rs"]
mod tests;
