//! The raw-TCP floor: blocking sockets exchanging gRPC's 5-byte length-prefixed frames (a flag
//! byte and a big-endian length) carrying the same protobuf messages, with no HTTP/2 at all.
//! Requests are pipelined and each batch goes out in one write; so do the server's answers.
//! A request whose flag byte is [`STREAM`] asks the server to send its answer forever.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use prost::Message;

use super::{Kind, Report, Scenario, Tally, Window};
use crate::pb::testing::{Payload, SimpleRequest, SimpleResponse};

/// The flag byte that turns a request into "stream this answer until I hang up".
pub const STREAM: u8 = 2;

fn frame(flag: u8, message: &impl Message, out: &mut Vec<u8>) {
    let len = message.encoded_len();
    out.push(flag);
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
    message.encode_raw(out);
}

fn answer(request: &SimpleRequest) -> SimpleResponse {
    let size = usize::try_from(request.response_size).unwrap_or(0);
    SimpleResponse {
        payload: (size > 0).then(|| Payload {
            r#type: 0,
            body: vec![0; size],
        }),
        ..SimpleResponse::default()
    }
}

/// Serves the floor on `127.0.0.1:port`, a thread per connection, until killed.
pub fn serve(port: u16) -> io::Result<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    for stream in listener.incoming() {
        let stream = stream?;
        std::thread::spawn(move || {
            let _ = connection(stream);
        });
    }
    Ok(())
}

fn connection(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; 256 << 10];
    let mut filled = 0;
    let mut out = Vec::with_capacity(256 << 10);
    loop {
        if filled == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = stream.read(&mut buf[filled..])?;
        if n == 0 {
            return Ok(());
        }
        filled += n;
        let mut at = 0;
        let data = &buf[..filled];
        while let Some(header) = data.get(at..at + 5) {
            let flag = header[0];
            let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
            let Some(body) = data.get(at + 5..at + 5 + len) else {
                break;
            };
            let request = SimpleRequest::decode(body).map_err(io::Error::other)?;
            at += 5 + len;
            if flag == STREAM {
                return stream_forever(&mut stream, &answer(&request));
            }
            frame(0, &answer(&request), &mut out);
        }
        buf.copy_within(at..filled, 0);
        filled -= at;
        if !out.is_empty() {
            stream.write_all(&out)?;
            out.clear();
        }
    }
}

fn stream_forever(stream: &mut TcpStream, response: &SimpleResponse) -> io::Result<()> {
    let mut out = Vec::new();
    while out.len() < 256 << 10 {
        frame(0, response, &mut out);
    }
    loop {
        stream.write_all(&out)?; // fails once the client hangs up
    }
}

/// Reads frames off a byte stream, yielding only how many ended in each read.
#[derive(Debug, Default)]
struct Frames {
    header: [u8; 5],
    have: usize,
    body_left: usize,
}

impl Frames {
    /// Consumes `bytes`; returns the number of frames completed.
    fn feed(&mut self, mut bytes: &[u8]) -> usize {
        let mut done = 0;
        while !bytes.is_empty() {
            if self.have < 5 {
                let take = (5 - self.have).min(bytes.len());
                self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
                self.have += take;
                bytes = &bytes[take..];
                if self.have == 5 {
                    let h = self.header;
                    self.body_left = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
                } else {
                    break;
                }
            }
            let take = self.body_left.min(bytes.len());
            self.body_left -= take;
            bytes = &bytes[take..];
            if self.body_left == 0 {
                self.have = 0;
                done += 1;
            }
        }
        done
    }
}

fn closed_loop(target: &str, scenario: &Scenario, window: &Window) -> io::Result<Tally> {
    let mut stream = TcpStream::connect(target)?;
    stream.set_nodelay(true)?;
    let mut one = Vec::new();
    frame(
        0,
        &super::anygrpc_side::request(scenario.req_bytes, scenario.resp_bytes),
        &mut one,
    );
    let in_flight = scenario.per_connection();
    let mut started = std::collections::VecDeque::with_capacity(in_flight);
    let mut out = Vec::with_capacity(one.len() * in_flight);
    for _ in 0..in_flight {
        out.extend_from_slice(&one);
        started.push_back(Instant::now());
    }
    stream.write_all(&out)?;
    let mut frames = Frames::default();
    let mut buf = vec![0u8; 256 << 10];
    let mut tally = Tally::default();
    while !started.is_empty() {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        out.clear();
        let over = window.over();
        for _ in 0..frames.feed(&buf[..n]) {
            let Some(t) = started.pop_front() else {
                return Err(io::Error::other("an answer to no request"));
            };
            tally.call(window, t, true);
            if !over {
                out.extend_from_slice(&one);
                started.push_back(Instant::now());
            }
        }
        if !out.is_empty() {
            stream.write_all(&out)?;
        }
    }
    Ok(tally)
}

fn stream(target: &str, scenario: &Scenario, window: &Window) -> io::Result<Tally> {
    let mut stream = TcpStream::connect(target)?;
    stream.set_nodelay(true)?;
    let mut first = Vec::new();
    frame(
        STREAM,
        &super::anygrpc_side::request(0, scenario.resp_bytes),
        &mut first,
    );
    stream.write_all(&first)?;
    let mut frames = Frames::default();
    let mut buf = vec![0u8; 256 << 10];
    let mut tally = Tally::default();
    let mut over = window.over();
    while !over {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        for _ in 0..frames.feed(&buf[..n]) {
            over = tally.message(window, scenario.resp_bytes);
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
    Ok(tally)
}

/// Runs `scenario` for `duration` (after the warm-up) against a floor server at `target`.
pub fn client(target: &str, scenario: &Scenario, duration: Duration) -> Result<Report, String> {
    let window = Window::new(duration);
    let results: Vec<io::Result<Tally>> = std::thread::scope(|s| {
        let window = &window;
        let threads: Vec<_> = match scenario.kind {
            Kind::Stream => vec![s.spawn(move || stream(target, scenario, window))],
            Kind::Unary | Kind::PingPong => (0..scenario.connections)
                .map(|_| s.spawn(move || closed_loop(target, scenario, window)))
                .collect(),
        };
        threads
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err(io::Error::other("panicked")))
            })
            .collect()
    });
    let mut tally = Tally::default();
    for result in results {
        tally.merge(result.map_err(|e| format!("floor client: {e}"))?);
    }
    Ok(Report::new(scenario, "floor", tally, &window))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_anywhere_are_counted_once() {
        let mut wire = Vec::new();
        for size in [0, 3, 70_000] {
            frame(
                0,
                &answer(&SimpleRequest {
                    response_size: size,
                    ..Default::default()
                }),
                &mut wire,
            );
        }
        for chunk in [1, 2, 5, 7, 4096, wire.len()] {
            let mut frames = Frames::default();
            let total: usize = wire.chunks(chunk).map(|c| frames.feed(c)).sum();
            assert_eq!(total, 3, "chunk {chunk}");
        }
    }
}
