//! Channel options by name, as grpc.aio takes them (`options=[("grpc.service_config", ...)]`):
//! the channel arguments of gRPC's C-core that anygrpc has, each mapped onto the builder
//! method that sets it. An unknown name or a value of the wrong kind is an error naming it,
//! not silently ignored.

use std::fmt;
use std::time::Duration;

use super::channel::{ChannelBuilder, LoadBalancing};
use super::proxy::HttpProxy;

/// The value of a channel option: grpc.aio's options are strings or integers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChannelOptionValue {
    /// An integer option (sizes, milliseconds, 0/1 switches).
    Int(i64),
    /// A string option (a service config, an authority, a policy name).
    Str(String),
}

impl From<i64> for ChannelOptionValue {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<i32> for ChannelOptionValue {
    fn from(value: i32) -> Self {
        Self::Int(value.into())
    }
}

impl From<bool> for ChannelOptionValue {
    fn from(value: bool) -> Self {
        Self::Int(value.into())
    }
}

impl From<&str> for ChannelOptionValue {
    fn from(value: &str) -> Self {
        Self::Str(value.to_owned())
    }
}

impl From<String> for ChannelOptionValue {
    fn from(value: String) -> Self {
        Self::Str(value)
    }
}

/// A channel option that was refused: its name and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelOptionError {
    /// The option's name, as given.
    pub key: String,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for ChannelOptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "channel option {:?}: {}", self.key, self.problem)
    }
}

impl std::error::Error for ChannelOptionError {}

/// The option names [`ChannelBuilder::option`] takes.
pub const CHANNEL_OPTIONS: &[&str] = &[
    "grpc.service_config",
    "grpc.lb_policy_name",
    "grpc.enable_retries",
    "grpc.per_rpc_retry_buffer_size",
    "grpc.max_receive_message_length",
    "grpc.max_send_message_length",
    "grpc.keepalive_time_ms",
    "grpc.keepalive_timeout_ms",
    "grpc.keepalive_permit_without_calls",
    "grpc.client_idle_timeout_ms",
    "grpc.default_authority",
    "grpc.primary_user_agent",
    "grpc.enable_http_proxy",
    "grpc.http_proxy",
    #[cfg(feature = "tls")]
    "grpc.ssl_target_name_override",
];

impl ChannelBuilder {
    /// Sets a channel option by its gRPC name (C-core's channel arguments, as grpc.aio's
    /// `options=` takes them): `grpc.service_config` (JSON), `grpc.lb_policy_name`
    /// (`pick_first`, `round_robin`, `least_request`), `grpc.enable_retries` (0 turns retries off, the
    /// transparent ones too), `grpc.per_rpc_retry_buffer_size`,
    /// `grpc.max_receive_message_length` / `grpc.max_send_message_length` (-1: unlimited),
    /// `grpc.keepalive_time_ms`, `grpc.keepalive_timeout_ms`,
    /// `grpc.keepalive_permit_without_calls`, `grpc.client_idle_timeout_ms` (0: never idle),
    /// `grpc.default_authority`, `grpc.primary_user_agent` (accepted; anygrpc sends its own),
    /// `grpc.enable_http_proxy` (0: never through a proxy), `grpc.http_proxy` (a proxy URL),
    /// and with TLS `grpc.ssl_target_name_override`. Any other name (see
    /// [`CHANNEL_OPTIONS`]), or a value of the wrong kind or range, is an error naming the
    /// option.
    pub fn option(
        self,
        key: &str,
        value: impl Into<ChannelOptionValue>,
    ) -> Result<Self, ChannelOptionError> {
        let value = value.into();
        let fail = |problem: String| ChannelOptionError {
            key: key.to_owned(),
            problem,
        };
        let int = |value: &ChannelOptionValue| match value {
            ChannelOptionValue::Int(n) => Ok(*n),
            ChannelOptionValue::Str(_) => Err(fail("takes an integer".into())),
        };
        let text = |value: &ChannelOptionValue| match value {
            ChannelOptionValue::Str(s) => Ok(s.clone()),
            ChannelOptionValue::Int(_) => Err(fail("takes a string".into())),
        };
        let size = |value: &ChannelOptionValue| -> Result<usize, ChannelOptionError> {
            match int(value)? {
                -1 => Ok(usize::MAX),
                n => usize::try_from(n).map_err(|_| fail(format!("{n} is not a size (or -1)"))),
            }
        };
        let millis = |value: &ChannelOptionValue| -> Result<Duration, ChannelOptionError> {
            let n = int(value)?;
            u64::try_from(n)
                .map(Duration::from_millis)
                .map_err(|_| fail(format!("{n} is not a number of milliseconds")))
        };
        let switch = |value: &ChannelOptionValue| -> Result<bool, ChannelOptionError> {
            match int(value)? {
                0 => Ok(false),
                1 => Ok(true),
                n => Err(fail(format!("{n} is neither 0 nor 1"))),
            }
        };
        Ok(match key {
            "grpc.service_config" => self
                .service_config(&text(&value)?)
                .map_err(|e| fail(e.to_string()))?,
            "grpc.lb_policy_name" => match text(&value)?.as_str() {
                "pick_first" => self.load_balancing(LoadBalancing::PickFirst),
                "round_robin" => self.load_balancing(LoadBalancing::RoundRobin),
                "least_request" => self.load_balancing(LoadBalancing::LeastRequest),
                other => return Err(fail(format!("unknown policy {other:?}"))),
            },
            "grpc.enable_retries" => self.enable_retries(switch(&value)?),
            "grpc.per_rpc_retry_buffer_size" => {
                let per_channel = self.retry_buffer_limits().1;
                self.retry_buffer(size(&value)?, per_channel)
            }
            "grpc.max_receive_message_length" => self.max_receive_message_length(size(&value)?),
            "grpc.max_send_message_length" => self.max_send_message_length(size(&value)?),
            "grpc.keepalive_time_ms" => {
                let timeout = self.keepalive_settings().1;
                self.keepalive(millis(&value)?, timeout)
            }
            "grpc.keepalive_timeout_ms" => {
                let interval = self.keepalive_settings().0;
                let timeout = millis(&value)?;
                match interval {
                    Some(interval) => self.keepalive(interval, timeout),
                    None => self.keepalive_timeout(timeout),
                }
            }
            "grpc.keepalive_permit_without_calls" => {
                self.keepalive_permit_without_calls(switch(&value)?)
            }
            "grpc.client_idle_timeout_ms" => {
                let timeout = millis(&value)?;
                self.idle_timeout((!timeout.is_zero()).then_some(timeout))
            }
            "grpc.default_authority" => self.authority(text(&value)?),
            "grpc.enable_http_proxy" => self.enable_http_proxy(switch(&value)?),
            "grpc.http_proxy" => {
                let proxy = HttpProxy::parse(&text(&value)?).map_err(|e| fail(e.to_string()))?;
                self.http_proxy(proxy)
            }
            "grpc.primary_user_agent" => {
                text(&value)?;
                self
            }
            #[cfg(feature = "tls")]
            "grpc.ssl_target_name_override" => self.server_host_override(text(&value)?),
            _ => {
                return Err(fail(format!(
                    "not an option anygrpc knows (it takes {})",
                    CHANNEL_OPTIONS.join(", ")
                )));
            }
        })
    }

    /// Sets every option of `options` in order (see [`option`](Self::option)); the first
    /// refused one is the error.
    pub fn options<K: AsRef<str>, V: Into<ChannelOptionValue>>(
        self,
        options: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ChannelOptionError> {
        options.into_iter().try_fold(self, |builder, (key, value)| {
            builder.option(key.as_ref(), value)
        })
    }
}
