//! SETTINGS frames (RFC 9113 §6.5).

use core::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::{
    DEFAULT_MAX_FRAME_SIZE, FrameError, FrameHeader, FrameType, MAX_PAYLOAD_LEN, flags, put_header,
    require_connection,
};
use crate::error::{ErrorCode, StreamId};
use crate::reader::Reader;

/// A setting identifier (RFC 9113 §6.5.2, §11.3). Unknown values are kept and ignored.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SettingId(pub u16);

impl SettingId {
    /// SETTINGS_HEADER_TABLE_SIZE: the HPACK dynamic table size the sender's decoder allows.
    pub const HEADER_TABLE_SIZE: Self = Self(0x1);
    /// SETTINGS_ENABLE_PUSH: whether the sender accepts PUSH_PROMISE.
    pub const ENABLE_PUSH: Self = Self(0x2);
    /// SETTINGS_MAX_CONCURRENT_STREAMS: streams the sender lets the peer open at once.
    pub const MAX_CONCURRENT_STREAMS: Self = Self(0x3);
    /// SETTINGS_INITIAL_WINDOW_SIZE: the sender's initial stream receive window.
    pub const INITIAL_WINDOW_SIZE: Self = Self(0x4);
    /// SETTINGS_MAX_FRAME_SIZE: the largest frame payload the sender accepts.
    pub const MAX_FRAME_SIZE: Self = Self(0x5);
    /// SETTINGS_MAX_HEADER_LIST_SIZE: advisory limit on a decoded field section.
    pub const MAX_HEADER_LIST_SIZE: Self = Self(0x6);
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441 §3): not used by gRPC, ignored like an
    /// unknown setting.
    pub const ENABLE_CONNECT_PROTOCOL: Self = Self(0x8);

    /// The registered name of the setting, if this crate knows it.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x1 => "HEADER_TABLE_SIZE",
            0x2 => "ENABLE_PUSH",
            0x3 => "MAX_CONCURRENT_STREAMS",
            0x4 => "INITIAL_WINDOW_SIZE",
            0x5 => "MAX_FRAME_SIZE",
            0x6 => "MAX_HEADER_LIST_SIZE",
            0x8 => "ENABLE_CONNECT_PROTOCOL",
            _ => return None,
        })
    }
}

impl fmt::Debug for SettingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "SettingId({:#x})", self.0),
        }
    }
}

/// The largest flow-control window (RFC 9113 §6.9.1): 2^31 - 1.
const MAX_WINDOW_SIZE: u32 = (1 << 31) - 1;

/// A SETTINGS frame (RFC 9113 §6.5). Each field is `Some` when the frame carried that setting
/// (the last occurrence wins when one is repeated); unknown settings are ignored (§6.5.2).
/// Decoded values are already checked against the ranges of RFC 9113 §6.5.2.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Acknowledges the peer's SETTINGS; such a frame carries no setting.
    pub ack: bool,
    /// SETTINGS_HEADER_TABLE_SIZE in bytes (initially 4096).
    pub header_table_size: Option<u32>,
    /// SETTINGS_ENABLE_PUSH (initially true).
    pub enable_push: Option<bool>,
    /// SETTINGS_MAX_CONCURRENT_STREAMS (initially unlimited).
    pub max_concurrent_streams: Option<u32>,
    /// SETTINGS_INITIAL_WINDOW_SIZE in bytes, at most 2^31 - 1 (initially 65,535).
    pub initial_window_size: Option<u32>,
    /// SETTINGS_MAX_FRAME_SIZE in bytes, 16,384..=16,777,215 (initially 16,384).
    pub max_frame_size: Option<u32>,
    /// SETTINGS_MAX_HEADER_LIST_SIZE in bytes (initially unlimited).
    pub max_header_list_size: Option<u32>,
}

impl Settings {
    /// Size of one setting on the wire.
    const ENTRY_LEN: usize = 6;

    /// The acknowledgement of the peer's SETTINGS.
    pub fn ack() -> Self {
        Self {
            ack: true,
            ..Self::default()
        }
    }

    /// The settings present, in identifier order, as they go on the wire.
    pub fn entries(&self) -> impl Iterator<Item = (SettingId, u32)> + use<> {
        [
            (SettingId::HEADER_TABLE_SIZE, self.header_table_size),
            (SettingId::ENABLE_PUSH, self.enable_push.map(u32::from)),
            (
                SettingId::MAX_CONCURRENT_STREAMS,
                self.max_concurrent_streams,
            ),
            (SettingId::INITIAL_WINDOW_SIZE, self.initial_window_size),
            (SettingId::MAX_FRAME_SIZE, self.max_frame_size),
            (SettingId::MAX_HEADER_LIST_SIZE, self.max_header_list_size),
        ]
        .into_iter()
        .filter_map(|(id, value)| Some((id, value?)))
    }

    /// Records one received setting after checking its value (RFC 9113 §6.5.2). Unknown
    /// identifiers are ignored.
    fn set(&mut self, id: SettingId, value: u32) -> Result<(), FrameError> {
        match id {
            SettingId::HEADER_TABLE_SIZE => self.header_table_size = Some(value),
            SettingId::ENABLE_PUSH => {
                // RFC 9113 §6.5.2: any value other than 0 or 1 is a connection PROTOCOL_ERROR.
                self.enable_push = Some(match value {
                    0 => false,
                    1 => true,
                    _ => {
                        return Err(FrameError::connection(
                            ErrorCode::PROTOCOL_ERROR,
                            "SETTINGS_ENABLE_PUSH not 0 or 1",
                        ));
                    }
                });
            }
            SettingId::MAX_CONCURRENT_STREAMS => self.max_concurrent_streams = Some(value),
            SettingId::INITIAL_WINDOW_SIZE => {
                // RFC 9113 §6.5.2: above 2^31-1 is a connection FLOW_CONTROL_ERROR.
                if value > MAX_WINDOW_SIZE {
                    return Err(FrameError::connection(
                        ErrorCode::FLOW_CONTROL_ERROR,
                        "SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1",
                    ));
                }
                self.initial_window_size = Some(value);
            }
            SettingId::MAX_FRAME_SIZE => {
                // RFC 9113 §6.5.2: outside 2^14..=2^24-1 is a connection PROTOCOL_ERROR.
                if !(DEFAULT_MAX_FRAME_SIZE..=MAX_PAYLOAD_LEN).contains(&value) {
                    return Err(FrameError::connection(
                        ErrorCode::PROTOCOL_ERROR,
                        "SETTINGS_MAX_FRAME_SIZE out of range",
                    ));
                }
                self.max_frame_size = Some(value);
            }
            SettingId::MAX_HEADER_LIST_SIZE => self.max_header_list_size = Some(value),
            // RFC 9113 §6.5.2: unsupported settings are ignored.
            _ => {}
        }
        Ok(())
    }

    /// Decodes a SETTINGS payload (RFC 9113 §6.5).
    pub(super) fn decode(header: &FrameHeader, payload: &Bytes) -> Result<Self, FrameError> {
        // RFC 9113 §6.5: SETTINGS on a stream is a connection PROTOCOL_ERROR.
        require_connection(header, "SETTINGS on a stream")?;
        if header.flags & flags::ACK != 0 {
            // RFC 9113 §6.5: an ACK with a payload is a connection FRAME_SIZE_ERROR.
            if !payload.is_empty() {
                return Err(FrameError::connection(
                    ErrorCode::FRAME_SIZE_ERROR,
                    "SETTINGS ACK with a payload",
                ));
            }
            return Ok(Self::ack());
        }
        // RFC 9113 §6.5: a length that is not a multiple of 6 is a connection
        // FRAME_SIZE_ERROR.
        let size_error = || {
            FrameError::connection(
                ErrorCode::FRAME_SIZE_ERROR,
                "SETTINGS length not a multiple of 6",
            )
        };
        if payload.len() % Self::ENTRY_LEN != 0 {
            return Err(size_error());
        }
        let mut settings = Self::default();
        let mut r = Reader::new(payload);
        while !r.is_empty() {
            let id = r.u16().map_err(|_| size_error())?;
            let value = r.u32().map_err(|_| size_error())?;
            settings.set(SettingId(id), value)?;
        }
        Ok(settings)
    }

    /// Writes the frame: the `Some` settings in identifier order, or an empty ACK when `ack`
    /// is set (the other fields are then not sent).
    pub fn encode(&self, dst: &mut BytesMut) {
        if self.ack {
            put_header(
                dst,
                0,
                FrameType::SETTINGS,
                flags::ACK,
                StreamId::CONNECTION,
            );
            return;
        }
        let len = self.entries().count() * Self::ENTRY_LEN;
        dst.reserve(FrameHeader::LEN + len);
        put_header(dst, len, FrameType::SETTINGS, 0, StreamId::CONNECTION);
        for (id, value) in self.entries() {
            dst.put_u16(id.0);
            dst.put_u32(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::*;
    use super::super::{Frame, FrameType};
    use super::*;

    fn entry(id: u16, value: u32) -> Vec<u8> {
        let mut out = id.to_be_bytes().to_vec();
        out.extend_from_slice(&value.to_be_bytes());
        out
    }

    fn settings_of(payload: &[u8]) -> Result<Frame, FrameError> {
        decode_raw(FrameType::SETTINGS, 0, 0, payload)
    }

    fn full() -> Settings {
        Settings {
            ack: false,
            header_table_size: Some(0),
            enable_push: Some(false),
            max_concurrent_streams: Some(100),
            initial_window_size: Some(MAX_WINDOW_SIZE),
            max_frame_size: Some(MAX_PAYLOAD_LEN),
            max_header_list_size: Some(16_384),
        }
    }

    #[test]
    fn decode_every_known_setting() {
        let mut payload = Vec::new();
        for (id, value) in [(1, 0), (2, 0), (3, 100), (4, MAX_WINDOW_SIZE)] {
            payload.extend(entry(id, value));
        }
        payload.extend(entry(5, MAX_PAYLOAD_LEN));
        payload.extend(entry(6, 16_384));
        assert_eq!(settings_of(&payload).unwrap(), Frame::Settings(full()));
    }

    #[test]
    fn later_value_wins_and_unknown_ids_are_ignored() {
        let mut payload = entry(3, 10);
        payload.extend(entry(0x42, 7));
        payload.extend(entry(8, 1));
        payload.extend(entry(0, 99));
        payload.extend(entry(3, 20));
        let expected = Settings {
            max_concurrent_streams: Some(20),
            ..Settings::default()
        };
        assert_eq!(settings_of(&payload).unwrap(), Frame::Settings(expected));
        // A frame of only unknown settings is an empty SETTINGS.
        let only_unknown = settings_of(&entry(0xffff, 1)).unwrap();
        assert_eq!(only_unknown, Frame::Settings(Settings::default()));
    }

    #[test]
    fn enable_push_must_be_zero_or_one() {
        let ok = settings_of(&entry(2, 1)).unwrap();
        let expected = Settings {
            enable_push: Some(true),
            ..Settings::default()
        };
        assert_eq!(ok, Frame::Settings(expected));
        assert_conn(settings_of(&entry(2, 2)), ErrorCode::PROTOCOL_ERROR);
    }

    #[test]
    fn initial_window_size_limit() {
        assert!(settings_of(&entry(4, MAX_WINDOW_SIZE)).is_ok());
        let result = settings_of(&entry(4, MAX_WINDOW_SIZE + 1));
        assert_conn(result, ErrorCode::FLOW_CONTROL_ERROR);
    }

    #[test]
    fn max_frame_size_range() {
        assert!(settings_of(&entry(5, 16_384)).is_ok());
        assert!(settings_of(&entry(5, 16_777_215)).is_ok());
        assert_conn(settings_of(&entry(5, 16_383)), ErrorCode::PROTOCOL_ERROR);
        assert_conn(
            settings_of(&entry(5, 16_777_216)),
            ErrorCode::PROTOCOL_ERROR,
        );
    }

    #[test]
    fn length_must_be_a_multiple_of_six() {
        for len in [1, 5, 7, 11] {
            assert_conn(settings_of(&vec![0; len]), ErrorCode::FRAME_SIZE_ERROR);
        }
        assert_eq!(
            settings_of(b"").unwrap(),
            Frame::Settings(Settings::default())
        );
    }

    #[test]
    fn ack_must_be_empty() {
        let ack = decode_raw(FrameType::SETTINGS, flags::ACK, 0, b"").unwrap();
        assert_eq!(ack, Frame::Settings(Settings::ack()));
        for len in [1, 6] {
            let result = decode_raw(FrameType::SETTINGS, flags::ACK, 0, &vec![0; len]);
            assert_conn(result, ErrorCode::FRAME_SIZE_ERROR);
        }
    }

    #[test]
    fn settings_on_a_stream_is_a_connection_error() {
        let result = decode_raw(FrameType::SETTINGS, 0, 1, b"");
        assert_conn(result, ErrorCode::PROTOCOL_ERROR);
    }

    #[test]
    fn encode_writes_some_fields_in_id_order() {
        let settings = Settings {
            max_header_list_size: Some(5),
            enable_push: Some(false),
            ..Settings::default()
        };
        let mut payload = entry(2, 0);
        payload.extend(entry(6, 5));
        assert_eq!(
            encode(&Frame::Settings(settings)),
            wire(FrameType::SETTINGS, 0, 0, &payload)
        );
        // An ACK sends no settings even if some are set.
        let ack = Settings {
            max_frame_size: Some(20_000),
            ..Settings::ack()
        };
        assert_eq!(
            encode(&Frame::Settings(ack)),
            wire(FrameType::SETTINGS, flags::ACK, 0, b"")
        );
    }

    #[test]
    fn roundtrip_and_canonical() {
        for settings in [full(), Settings::default(), Settings::ack()] {
            let frame = Frame::Settings(settings);
            assert_eq!(roundtrip(&frame), frame);
        }
        let mut payload = entry(1, 4096);
        payload.extend(entry(4, 1 << 20));
        payload.extend(entry(5, 1 << 16));
        assert_canonical(&wire(FrameType::SETTINGS, 0, 0, &payload));
    }

    #[test]
    fn setting_id_debug() {
        assert_eq!(format!("{:?}", SettingId::MAX_FRAME_SIZE), "MAX_FRAME_SIZE");
        assert_eq!(format!("{:?}", SettingId(0x10)), "SettingId(0x10)");
    }
}
