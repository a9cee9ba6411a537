//! Just enough netlink to speak nf_tables and nfnetlink_queue: a raw `NETLINK_NETFILTER` socket,
//! a builder for (batches of) nfnetlink messages with nested attributes, and a parser.
//!
//! Written by hand because the crates that cover nf_tables wrap the C libraries (libnftnl, libmnl)
//! and the agent must stay a static binary without C dependencies.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_CREATE: u16 = 0x400;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;
const HEADER_LEN: usize = 16;
/// `struct nfgenmsg`: family, version, resource id.
const NFGEN_LEN: usize = 4;

/// A `NETLINK_NETFILTER` socket. Closing it (also by the process dying) is what makes the kernel
/// remove an owned nftables table and unbind queues.
pub struct Socket {
    fd: OwnedFd,
}

impl Socket {
    /// Opens and binds a socket; the kernel picks the port id.
    pub fn open() -> io::Result<Socket> {
        // SAFETY: plain syscall; the result is checked before use.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_NETFILTER,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: an all-zero sockaddr_nl is valid (family set below, pid 0 = kernel assigns).
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: `addr` outlives the call and its size is passed.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Socket { fd })
    }

    pub fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Sets an integer socket option.
    pub fn set_option(&self, level: i32, name: i32, value: i32) -> io::Result<()> {
        // SAFETY: `value` outlives the call and its size is passed.
        let rc = unsafe {
            libc::setsockopt(
                self.raw(),
                level,
                name,
                (&value as *const i32).cast(),
                std::mem::size_of::<i32>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Makes blocking receives give up after `limit`.
    pub fn set_receive_timeout(&self, limit: Duration) -> io::Result<()> {
        let tv = libc::timeval {
            tv_sec: limit.as_secs() as libc::time_t,
            tv_usec: limit.subsec_micros() as libc::suseconds_t,
        };
        // SAFETY: `tv` outlives the call and its size is passed.
        let rc = unsafe {
            libc::setsockopt(
                self.raw(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sends one datagram (one or more messages) to the kernel.
    pub fn send(&self, buf: &[u8]) -> io::Result<()> {
        // SAFETY: an all-zero sockaddr_nl addresses the kernel.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        loop {
            // SAFETY: `buf` and `addr` outlive the call; their sizes are passed.
            let rc = unsafe {
                libc::sendto(
                    self.raw(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    0,
                    (&addr as *const libc::sockaddr_nl).cast(),
                    std::mem::size_of::<libc::sockaddr_nl>() as u32,
                )
            };
            if rc >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Receives one datagram; `wait: false` returns `WouldBlock` when nothing is queued.
    pub fn recv(&self, buf: &mut [u8], wait: bool) -> io::Result<usize> {
        let flags = if wait { 0 } else { libc::MSG_DONTWAIT };
        loop {
            // SAFETY: `buf` is valid for writes of its length.
            let rc = unsafe { libc::recv(self.raw(), buf.as_mut_ptr().cast(), buf.len(), flags) };
            if rc >= 0 {
                return Ok(rc as usize);
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Sends `batch` and waits for the kernel's answer to every message that asked for an ack.
    /// The first error wins; `describe(seq)` names the message it concerns.
    pub fn transact(&self, batch: &Batch, describe: impl Fn(u32) -> String) -> io::Result<()> {
        self.send(batch.bytes())?;
        let mut pending: Vec<u32> = batch.acked.clone();
        let mut first_error: Option<io::Error> = None;
        let mut buf = vec![0u8; 1 << 16];
        while !pending.is_empty() {
            let n = match self.recv(&mut buf, true) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && first_error.is_some() => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the kernel did not answer",
                    ))
                }
                Err(e) => return Err(e),
            };
            for msg in messages(&buf[..n]) {
                if msg.kind != NLMSG_ERROR || !pending.contains(&msg.seq) {
                    continue;
                }
                pending.retain(|s| *s != msg.seq);
                let code = msg.error_code();
                if code != 0 && first_error.is_none() {
                    let os = io::Error::from_raw_os_error(-code);
                    first_error = Some(io::Error::new(
                        os.kind(),
                        format!("{}: {os}", describe(msg.seq)),
                    ));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Sends a dump or get request and collects the payloads of the answer messages.
    pub fn request(&self, batch: &Batch) -> io::Result<Vec<Vec<u8>>> {
        self.send(batch.bytes())?;
        let seq = batch.seq;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = self.recv(&mut buf, true)?;
            for msg in messages(&buf[..n]).filter(|m| m.seq == seq) {
                match msg.kind {
                    NLMSG_DONE => return Ok(out),
                    NLMSG_ERROR => {
                        let code = msg.error_code();
                        if code != 0 {
                            return Err(io::Error::from_raw_os_error(-code));
                        }
                        return Ok(out);
                    }
                    _ => {
                        let multi = msg.flags & NLM_F_MULTI != 0;
                        out.push(msg.payload.to_vec());
                        if !multi {
                            return Ok(out);
                        }
                    }
                }
            }
        }
    }
}

static NEXT_SEQ: AtomicU32 = AtomicU32::new(1);

/// Messages laid end to end in one buffer, as the kernel wants a batch or a burst of verdicts.
#[derive(Default)]
pub struct Batch {
    buf: Vec<u8>,
    open: Vec<usize>,
    start: usize,
    seq: u32,
    acked: Vec<u32>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Starts a message: netlink header, then `struct nfgenmsg`. Returns its sequence number,
    /// unique in the process so a late answer to one request is never taken for another's.
    pub fn begin(&mut self, kind: u16, flags: u16, family: u8, res_id: u16) -> u32 {
        self.seq = NEXT_SEQ.fetch_add(1, Ordering::Relaxed);
        self.start = self.buf.len();
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&self.seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.push(family);
        self.buf.push(0);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
        if flags & NLM_F_ACK != 0 {
            self.acked.push(self.seq);
        }
        self.seq
    }

    /// Finishes the message started last by writing its length.
    pub fn end(&mut self) {
        let len = (self.buf.len() - self.start) as u32;
        self.buf[self.start..self.start + 4].copy_from_slice(&len.to_ne_bytes());
    }

    pub fn attr(&mut self, kind: u16, data: &[u8]) {
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    pub fn attr_be32(&mut self, kind: u16, value: u32) {
        self.attr(kind, &value.to_be_bytes());
    }

    /// A NUL-terminated string attribute.
    pub fn attr_str(&mut self, kind: u16, value: &str) {
        let mut data = value.as_bytes().to_vec();
        data.push(0);
        self.attr(kind, &data);
    }

    pub fn nest(&mut self, kind: u16) {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    }

    pub fn unnest(&mut self) {
        let at = self.open.pop().expect("unnest matches a nest");
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Empties the buffer for reuse (sequence numbers keep counting).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.acked.clear();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }
}

/// One received message.
pub struct Message<'a> {
    pub kind: u16,
    pub flags: u16,
    pub seq: u32,
    /// After the netlink header (so starting with `struct nfgenmsg` for nfnetlink).
    pub payload: &'a [u8],
}

impl<'a> Message<'a> {
    /// The `res_id` of `struct nfgenmsg` (the queue number for nfqueue).
    pub fn res_id(&self) -> u16 {
        self.payload
            .get(2..4)
            .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
    }

    /// The attributes after `struct nfgenmsg`.
    pub fn attrs(&self) -> Attrs<'a> {
        attrs(self.payload)
    }

    /// The (negative errno or 0) code of an `NLMSG_ERROR`.
    fn error_code(&self) -> i32 {
        self.payload
            .get(..4)
            .map_or(0, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// The attributes of an nfnetlink message payload (after `struct nfgenmsg`).
pub fn attrs(payload: &[u8]) -> Attrs<'_> {
    Attrs(payload.get(NFGEN_LEN..).unwrap_or(&[]))
}

/// Splits a received datagram into its messages.
pub fn messages(buf: &[u8]) -> impl Iterator<Item = Message<'_>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.len() < HEADER_LEN {
            return None;
        }
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < HEADER_LEN || len > rest.len() {
            return None;
        }
        let msg = Message {
            kind: u16::from_ne_bytes([rest[4], rest[5]]),
            flags: u16::from_ne_bytes([rest[6], rest[7]]),
            seq: u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]),
            payload: &rest[HEADER_LEN..len],
        };
        rest = &rest[align(len).min(rest.len())..];
        Some(msg)
    })
}

/// An attribute list; iterating yields `(type, data)`.
#[derive(Clone, Copy)]
pub struct Attrs<'a>(pub &'a [u8]);

impl<'a> Iterator for Attrs<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<(u16, &'a [u8])> {
        let b = self.0;
        if b.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([b[0], b[1]]) as usize;
        if len < 4 || len > b.len() {
            return None;
        }
        let kind = u16::from_ne_bytes([b[2], b[3]]) & NLA_TYPE_MASK;
        self.0 = &b[align(len).min(b.len())..];
        Some((kind, &b[4..len]))
    }
}

impl<'a> Attrs<'a> {
    /// The data of the first attribute of type `kind`.
    pub fn get(self, kind: u16) -> Option<&'a [u8]> {
        self.into_iter().find(|(k, _)| *k == kind).map(|(_, d)| d)
    }
}

/// A big-endian u32 attribute value.
pub fn be32(data: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(..4)?.try_into().ok()?))
}

/// A big-endian u64 attribute value.
pub fn be64(data: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(data.get(..8)?.try_into().ok()?))
}

/// A NUL-terminated string attribute value.
pub fn string(data: &[u8]) -> String {
    let end = data.iter().position(|b| *b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

fn align(len: usize) -> usize {
    (len + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_round_trip() {
        let mut b = Batch::new();
        b.begin(0x0a06, NLM_F_REQUEST | NLM_F_ACK, 2, 0);
        b.attr_str(1, "t");
        b.nest(4);
        b.attr_be32(1, 7);
        b.unnest();
        b.end();
        let msgs: Vec<_> = messages(b.bytes()).collect();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].kind, 0x0a06);
        let attrs: Vec<_> = msgs[0].attrs().collect();
        assert_eq!(attrs.len(), 2);
        assert_eq!(string(attrs[0].1), "t");
        let inner = Attrs(attrs[1].1).get(1).and_then(be32);
        assert_eq!(inner, Some(7));
        assert_eq!(b.acked, vec![msgs[0].seq]);
    }
}
