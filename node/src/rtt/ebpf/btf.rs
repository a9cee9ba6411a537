//! Field offsets of kernel structs from the kernel's BTF (`/sys/kernel/btf/vmlinux`), read with
//! the `btfparse` crate; anonymous unions and structs, typedefs and qualifiers are walked
//! through, so `__sk_common.skc_daddr` is found wherever the kernel's layout puts it.

use anyhow::{anyhow, bail, Context, Result};
use btfparse::{Offset, Readable, TypeInformation};

/// The type information of one BTF blob.
pub struct Btf(TypeInformation);

impl Btf {
    /// Parses a raw BTF blob in host byte order (as the kernel exposes it).
    pub fn parse(data: &[u8]) -> Result<Self> {
        TypeInformation::new(&Bytes(data))
            .map(Btf)
            .map_err(|e| anyhow!("not BTF data: {e:?}"))
    }

    /// Byte offset of `path` (member names, outermost first) inside struct `name`.
    pub fn member_offset(&self, name: &str, path: &[&str]) -> Result<u32> {
        let id = self
            .0
            .id_of(name)
            .with_context(|| format!("the kernel's BTF has no struct {name}"))?;
        let path = path.join(".");
        match self.0.offset_of(id, &path) {
            Ok((_, Offset::ByteOffset(bytes))) => Ok(bytes),
            Ok((_, Offset::BitOffsetAndSize(..))) => bail!("{name}.{path} is a bit field"),
            Err(_) => bail!("the kernel's BTF has no member {path} in struct {name}"),
        }
    }
}

/// A BTF blob in memory, as btfparse reads it.
struct Bytes<'a>(&'a [u8]);

impl Readable for Bytes<'_> {
    fn read(&self, offset: u64, buffer: &mut [u8]) -> btfparse::Result<()> {
        use btfparse::{Error, ErrorKind};
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        if start >= self.0.len() {
            return Err(Error::new(ErrorKind::EOF, "no bytes left to read"));
        }
        let source = start
            .checked_add(buffer.len())
            .and_then(|end| self.0.get(start..end))
            .ok_or_else(|| Error::new(ErrorKind::InvalidOffset, "read beyond the BTF data"))?;
        buffer.copy_from_slice(source);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAGIC: u16 = 0xeb9f;
    const HEADER_LEN: usize = 24;
    const KIND_STRUCT: u32 = 4;
    const KIND_UNION: u32 = 5;
    const KIND_TYPEDEF: u32 = 8;

    /// Little BTF blob builder: types are appended in id order (first is id 1).
    #[derive(Default)]
    struct Blob {
        types: Vec<u8>,
        strings: Vec<u8>,
    }

    impl Blob {
        fn new() -> Self {
            Self {
                types: Vec::new(),
                strings: vec![0],
            }
        }

        fn string(&mut self, s: &str) -> u32 {
            if s.is_empty() {
                return 0;
            }
            let at = self.strings.len() as u32;
            self.strings.extend_from_slice(s.as_bytes());
            self.strings.push(0);
            at
        }

        fn words(&mut self, words: &[u32]) {
            for w in words {
                self.types.extend_from_slice(&w.to_ne_bytes());
            }
        }

        fn int(&mut self, name: &str, size: u32) {
            let n = self.string(name);
            self.words(&[n, 1 << 24, size, size * 8]);
        }

        fn composite(&mut self, kind: u32, name: &str, size: u32, members: &[(&str, u32, u32)]) {
            let n = self.string(name);
            self.words(&[n, kind << 24 | members.len() as u32, size]);
            for (name, ty, bits) in members {
                let n = self.string(name);
                self.words(&[n, *ty, *bits]);
            }
        }

        fn finish(self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&MAGIC.to_ne_bytes());
            out.extend_from_slice(&[1, 0]);
            let tl = self.types.len() as u32;
            let sl = self.strings.len() as u32;
            for w in [HEADER_LEN as u32, 0, tl, tl, sl] {
                out.extend_from_slice(&w.to_ne_bytes());
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strings);
            out
        }
    }

    /// struct outer { int pad; struct common { union { long pair; struct { int d; int s; }; }; } c; }
    fn sample() -> Btf {
        let mut b = Blob::new();
        b.int("int", 4); // 1
        b.int("long", 8); // 2
        b.composite(KIND_STRUCT, "", 8, &[("d", 1, 0), ("s", 1, 32)]); // 3
        b.composite(KIND_UNION, "", 8, &[("pair", 2, 0), ("", 3, 0)]); // 4
        b.composite(KIND_STRUCT, "common", 16, &[("x", 1, 0), ("", 4, 64)]); // 5
        let n = b.string("common_t");
        b.words(&[n, KIND_TYPEDEF << 24, 5]); // 6
        b.composite(KIND_STRUCT, "outer", 24, &[("pad", 1, 0), ("c", 6, 64)]); // 7
        Btf::parse(&b.finish()).unwrap()
    }

    #[test]
    fn walks_named_typedefed_and_anonymous_members() {
        let btf = sample();
        assert_eq!(btf.member_offset("outer", &["pad"]).unwrap(), 0);
        assert_eq!(btf.member_offset("outer", &["c", "x"]).unwrap(), 8);
        assert_eq!(btf.member_offset("outer", &["c", "pair"]).unwrap(), 16);
        assert_eq!(btf.member_offset("outer", &["c", "s"]).unwrap(), 20);
        assert_eq!(btf.member_offset("common", &["d"]).unwrap(), 8);
    }

    #[test]
    fn missing_names_are_reported() {
        let btf = sample();
        let e = btf.member_offset("outer", &["c", "nope"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the kernel's BTF has no member c.nope in struct outer"
        );
        let e = btf.member_offset("inner", &["x"]).unwrap_err();
        assert_eq!(e.to_string(), "the kernel's BTF has no struct inner");
        assert!(Btf::parse(&[0; 8]).is_err());
    }

    /// The running kernel's BTF (when it has one) yields the fields the program needs.
    #[test]
    fn finds_tcp_sock_fields_in_the_running_kernel() {
        let Ok(data) = std::fs::read("/sys/kernel/btf/vmlinux") else {
            return;
        };
        let btf = Btf::parse(&data).unwrap();
        let srtt = btf.member_offset("tcp_sock", &["srtt_us"]).unwrap();
        let mdev = btf.member_offset("tcp_sock", &["mdev_us"]).unwrap();
        assert!(srtt > 0 && mdev > 0 && srtt != mdev, "{srtt} {mdev}");
        let common = ["inet_conn", "icsk_inet", "sk", "__sk_common"];
        let daddr = btf
            .member_offset("tcp_sock", &[&common[..], &["skc_daddr"]].concat())
            .unwrap();
        let saddr = btf
            .member_offset("tcp_sock", &[&common[..], &["skc_rcv_saddr"]].concat())
            .unwrap();
        assert_eq!(
            (daddr, saddr),
            (0, 4),
            "sock_common starts with the address pair"
        );
    }
}
