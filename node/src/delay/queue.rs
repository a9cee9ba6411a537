//! NFQUEUE through nfnetlink_queue: bind the queues, receive packet notices (metadata only: the
//! queue number already says which rule matched), and send verdicts in bursts.

use std::io;

use super::nl::{self, Batch, Socket, NLM_F_ACK, NLM_F_REQUEST};

const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
const NFQA_CFG_MASK: u16 = 4;
const NFQA_CFG_FLAGS: u16 = 5;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_META: u8 = 1;
/// Hand over GSO packets whole instead of segmenting them first, as netem delays them whole.
const NFQA_CFG_F_GSO: u32 = 0x4;

/// What to do with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Drop,
}

/// A packet waiting in the kernel for our verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub queue: u16,
    pub id: u32,
}

/// Binds `count` queues starting at `first`, each holding at most `limit` packets.
pub fn bind(sock: &Socket, first: u16, count: u16, limit: u32) -> io::Result<()> {
    let mut b = Batch::new();
    let mut what = Vec::new();
    for queue in first..first + count {
        let seq = b.begin(
            NFQNL_MSG_CONFIG | (NFNL_SUBSYS_QUEUE << 8),
            NLM_F_REQUEST | NLM_F_ACK,
            libc::AF_UNSPEC as u8,
            queue,
        );
        what.push((seq, queue));
        b.attr(NFQA_CFG_CMD, &[NFQNL_CFG_CMD_BIND, 0, 0, 0]);
        b.end();
        let seq = b.begin(
            NFQNL_MSG_CONFIG | (NFNL_SUBSYS_QUEUE << 8),
            NLM_F_REQUEST | NLM_F_ACK,
            libc::AF_UNSPEC as u8,
            queue,
        );
        what.push((seq, queue));
        let mut params = 0u32.to_be_bytes().to_vec();
        params.push(NFQNL_COPY_META);
        b.attr(NFQA_CFG_PARAMS, &params);
        b.attr_be32(NFQA_CFG_QUEUE_MAXLEN, limit);
        b.attr_be32(NFQA_CFG_MASK, NFQA_CFG_F_GSO);
        b.attr_be32(NFQA_CFG_FLAGS, NFQA_CFG_F_GSO);
        b.end();
    }
    sock.transact(&b, |seq| {
        let queue = what
            .iter()
            .find(|(s, _)| *s == seq)
            .map_or(first, |(_, q)| *q);
        format!("binding queue {queue}")
    })
}

/// The packets announced in one received datagram.
pub fn packets(buf: &[u8]) -> impl Iterator<Item = Packet> + '_ {
    nl::messages(buf).filter_map(|m| {
        if m.kind != NFQNL_MSG_PACKET | (NFNL_SUBSYS_QUEUE << 8) {
            return None;
        }
        let hdr = m.attrs().get(NFQA_PACKET_HDR)?;
        Some(Packet {
            queue: m.res_id(),
            id: nl::be32(hdr)?,
        })
    })
}

/// Appends a verdict to `out`; many go to the kernel in one `send`.
pub fn verdict(out: &mut Batch, packet: Packet, verdict: Verdict) {
    out.begin(
        NFQNL_MSG_VERDICT | (NFNL_SUBSYS_QUEUE << 8),
        NLM_F_REQUEST,
        libc::AF_UNSPEC as u8,
        packet.queue,
    );
    let code = match verdict {
        Verdict::Accept => libc::NF_ACCEPT as u32,
        Verdict::Drop => libc::NF_DROP as u32,
    };
    let mut hdr = code.to_be_bytes().to_vec();
    hdr.extend_from_slice(&packet.id.to_be_bytes());
    out.attr(NFQA_VERDICT_HDR, &hdr);
    out.end();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_parse_back_as_nfqueue_messages() {
        let mut b = Batch::new();
        verdict(&mut b, Packet { queue: 4201, id: 9 }, Verdict::Drop);
        let m = nl::messages(b.bytes()).next().unwrap();
        assert_eq!(m.kind, 0x0301);
        assert_eq!(m.res_id(), 4201);
        let hdr = m.attrs().get(NFQA_VERDICT_HDR).unwrap();
        assert_eq!(nl::be32(hdr), Some(libc::NF_DROP as u32));
        assert_eq!(nl::be32(&hdr[4..]), Some(9));
    }

    #[test]
    fn packet_notices_carry_queue_and_id() {
        let mut b = Batch::new();
        b.begin(0x0300, 0, libc::AF_INET as u8, 4200);
        b.attr(NFQA_PACKET_HDR, &[0, 0, 0, 42, 8, 0, 4, 0]);
        b.end();
        let p: Vec<_> = packets(b.bytes()).collect();
        assert_eq!(
            p,
            vec![Packet {
                queue: 4200,
                id: 42
            }]
        );
    }
}
