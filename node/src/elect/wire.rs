//! The replicas' datagram format: small, versioned, and strict.
//!
//! Layout (big endian): magic `b"OE"`, version u8, type u8, sender id u16, term u64, then a
//! fixed-size body per type. A datagram is accepted only if every byte is accounted for, so
//! anything foreign or truncated is rejected with a reason instead of being misread.

use std::fmt;

/// First bytes of every datagram ("orch elect").
pub const MAGIC: [u8; 2] = *b"OE";
/// Format version; bump on any layout change.
pub const VERSION: u8 = 1;
/// Bytes before the type-specific body.
pub const HEADER_LEN: usize = 14;

/// A message between replicas.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Message {
    /// A candidate asks for a vote in `term` (the candidate is the sender).
    RequestVote,
    /// Answer to RequestVote.
    VoteResponse { granted: bool },
    /// Leader heartbeat with its sequence number.
    AppendEntries { seq: u64 },
    /// Answer to a heartbeat; tells a stale leader about a newer term.
    AppendEntriesResponse { seq: u64, success: bool },
    /// The sender's latest penalty score (lower is better placed).
    PenaltyScore { score: f64 },
    /// The sender asks `proposed` to replace `leader`; `latency_ms` is its latency to the leader.
    Petition {
        leader: u16,
        proposed: u16,
        latency_ms: f64,
    },
    /// RTT probe; `nonce` is echoed back unchanged.
    Probe { nonce: u64 },
    /// Echo of a probe.
    ProbeAck { nonce: u64 },
}

/// A decoded datagram: who sent it, in which term, and what.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Envelope {
    /// Sender's replica id.
    pub from: u16,
    /// Sender's current term.
    pub term: u64,
    /// The message.
    pub msg: Message,
}

/// Why a datagram was rejected; the names are the drop-counter keys in events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DecodeError {
    /// Shorter than a header.
    Short,
    /// Does not start with [`MAGIC`].
    Magic,
    /// Another format version.
    Version,
    /// Unknown message type.
    Type,
    /// Body length does not match the type.
    Length,
    /// A field holds an impossible value (bool not 0/1, NaN, negative latency).
    Value,
}

impl DecodeError {
    /// Stable name used as a drop-counter key.
    pub fn name(self) -> &'static str {
        match self {
            Self::Short => "short",
            Self::Magic => "magic",
            Self::Version => "version",
            Self::Type => "type",
            Self::Length => "length",
            Self::Value => "value",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

const T_REQUEST_VOTE: u8 = 1;
const T_VOTE_RESPONSE: u8 = 2;
const T_APPEND_ENTRIES: u8 = 3;
const T_APPEND_RESPONSE: u8 = 4;
const T_PENALTY: u8 = 5;
const T_PETITION: u8 = 6;
const T_PROBE: u8 = 7;
const T_PROBE_ACK: u8 = 8;

impl Message {
    fn kind(&self) -> u8 {
        match self {
            Self::RequestVote => T_REQUEST_VOTE,
            Self::VoteResponse { .. } => T_VOTE_RESPONSE,
            Self::AppendEntries { .. } => T_APPEND_ENTRIES,
            Self::AppendEntriesResponse { .. } => T_APPEND_RESPONSE,
            Self::PenaltyScore { .. } => T_PENALTY,
            Self::Petition { .. } => T_PETITION,
            Self::Probe { .. } => T_PROBE,
            Self::ProbeAck { .. } => T_PROBE_ACK,
        }
    }
}

fn body_len(kind: u8) -> Option<usize> {
    Some(match kind {
        T_REQUEST_VOTE => 0,
        T_VOTE_RESPONSE => 1,
        T_APPEND_ENTRIES | T_PENALTY | T_PROBE | T_PROBE_ACK => 8,
        T_APPEND_RESPONSE => 9,
        T_PETITION => 12,
        _ => return None,
    })
}

/// Serializes an envelope into a datagram.
pub fn encode(env: &Envelope) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_LEN + 12);
    b.extend_from_slice(&MAGIC);
    b.push(VERSION);
    b.push(env.msg.kind());
    b.extend_from_slice(&env.from.to_be_bytes());
    b.extend_from_slice(&env.term.to_be_bytes());
    match env.msg {
        Message::RequestVote => {}
        Message::VoteResponse { granted } => b.push(u8::from(granted)),
        Message::AppendEntries { seq } => b.extend_from_slice(&seq.to_be_bytes()),
        Message::AppendEntriesResponse { seq, success } => {
            b.extend_from_slice(&seq.to_be_bytes());
            b.push(u8::from(success));
        }
        Message::PenaltyScore { score } => b.extend_from_slice(&score.to_be_bytes()),
        Message::Petition {
            leader,
            proposed,
            latency_ms,
        } => {
            b.extend_from_slice(&leader.to_be_bytes());
            b.extend_from_slice(&proposed.to_be_bytes());
            b.extend_from_slice(&latency_ms.to_be_bytes());
        }
        Message::Probe { nonce } | Message::ProbeAck { nonce } => {
            b.extend_from_slice(&nonce.to_be_bytes())
        }
    }
    b
}

/// A cursor over the body that cannot read past its end (lengths are checked up front).
struct Body<'a>(&'a [u8]);

impl Body<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        let mut out = [0; N];
        out.copy_from_slice(head);
        out
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.take())
    }
    fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.take::<1>()[0] {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::Value),
        }
    }
    /// A finite, non-negative quantity (score, latency).
    fn amount(value: f64) -> Result<f64, DecodeError> {
        if value.is_finite() && value >= 0.0 {
            Ok(value)
        } else {
            Err(DecodeError::Value)
        }
    }
}

/// Parses a datagram, rejecting anything that is not exactly a valid message.
pub fn decode(buf: &[u8]) -> Result<Envelope, DecodeError> {
    if buf.len() < HEADER_LEN {
        return Err(DecodeError::Short);
    }
    if buf[..2] != MAGIC {
        return Err(DecodeError::Magic);
    }
    if buf[2] != VERSION {
        return Err(DecodeError::Version);
    }
    let kind = buf[3];
    let expected = body_len(kind).ok_or(DecodeError::Type)?;
    if buf.len() != HEADER_LEN + expected {
        return Err(DecodeError::Length);
    }
    let mut header = Body(&buf[4..HEADER_LEN]);
    let from = header.u16();
    let term = header.u64();
    let mut body = Body(&buf[HEADER_LEN..]);
    let msg = match kind {
        T_REQUEST_VOTE => Message::RequestVote,
        T_VOTE_RESPONSE => Message::VoteResponse {
            granted: body.bool()?,
        },
        T_APPEND_ENTRIES => Message::AppendEntries { seq: body.u64() },
        T_APPEND_RESPONSE => Message::AppendEntriesResponse {
            seq: body.u64(),
            success: body.bool()?,
        },
        T_PENALTY => Message::PenaltyScore {
            score: Body::amount(f64::from_be_bytes(body.take()))?,
        },
        T_PETITION => {
            let leader = body.u16();
            let proposed = body.u16();
            let latency_ms = Body::amount(f64::from_be_bytes(body.take()))?;
            Message::Petition {
                leader,
                proposed,
                latency_ms,
            }
        }
        T_PROBE => Message::Probe { nonce: body.u64() },
        T_PROBE_ACK => Message::ProbeAck { nonce: body.u64() },
        _ => return Err(DecodeError::Type),
    };
    Ok(Envelope { from, term, msg })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{RngExt, SeedableRng};

    fn all_messages() -> Vec<Message> {
        vec![
            Message::RequestVote,
            Message::VoteResponse { granted: true },
            Message::VoteResponse { granted: false },
            Message::AppendEntries { seq: u64::MAX },
            Message::AppendEntriesResponse {
                seq: 7,
                success: true,
            },
            Message::PenaltyScore { score: 37.5 },
            Message::Petition {
                leader: 3,
                proposed: 4,
                latency_ms: 120.25,
            },
            Message::Probe { nonce: 123_456 },
            Message::ProbeAck { nonce: 1 },
        ]
    }

    #[test]
    fn every_message_roundtrips() {
        for msg in all_messages() {
            let env = Envelope {
                from: 4,
                term: 1 << 40,
                msg,
            };
            let bytes = encode(&env);
            assert_eq!(decode(&bytes), Ok(env), "{msg:?}");
        }
    }

    #[test]
    fn truncation_extension_and_corruption_are_rejected() {
        for msg in all_messages() {
            let bytes = encode(&Envelope {
                from: 1,
                term: 2,
                msg,
            });
            for cut in 0..bytes.len() {
                assert!(decode(&bytes[..cut]).is_err(), "{msg:?} cut at {cut}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert_eq!(decode(&longer), Err(DecodeError::Length));
            let mut bad_version = bytes.clone();
            bad_version[2] = VERSION + 1;
            assert_eq!(decode(&bad_version), Err(DecodeError::Version));
        }
        let mut nan = encode(&Envelope {
            from: 0,
            term: 0,
            msg: Message::PenaltyScore { score: 0.0 },
        });
        nan[HEADER_LEN..].copy_from_slice(&f64::NAN.to_be_bytes());
        assert_eq!(decode(&nan), Err(DecodeError::Value));
        let mut bool2 = encode(&Envelope {
            from: 0,
            term: 0,
            msg: Message::VoteResponse { granted: true },
        });
        bool2[HEADER_LEN] = 2;
        assert_eq!(decode(&bool2), Err(DecodeError::Value));
    }

    #[test]
    fn ten_thousand_random_datagrams_are_rejected_without_panicking() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
        for i in 0..10_000 {
            let len = rng.random_range(0..64usize);
            let buf: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            if let Ok(env) = decode(&buf) {
                panic!("random datagram {i} ({buf:?}) decoded as {env:?}");
            }
        }
    }

    /// Random bodies behind a valid header reach the per-field checks; none may panic.
    #[test]
    fn random_bodies_behind_a_valid_header_never_panic() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0xbad);
        for _ in 0..10_000 {
            let len = rng.random_range(HEADER_LEN..HEADER_LEN + 16);
            let mut buf: Vec<u8> = (0..len).map(|_| rng.random()).collect();
            buf[..2].copy_from_slice(&MAGIC);
            buf[2] = VERSION;
            buf[3] = rng.random_range(0..10);
            if let Ok(env) = decode(&buf) {
                assert_eq!(
                    encode(&env),
                    buf,
                    "an accepted datagram re-encodes identically"
                );
            }
        }
    }
}
