//! Struct field offsets from BTF, the kernel's description of its own types
//! (`/sys/kernel/btf/vmlinux`), so the eBPF program reads `struct tcp_sock` at the offsets of the
//! running kernel instead of compiled-in ones.
//!
//! Only what that needs: find a struct by name and follow a path of member names, looking
//! through anonymous structs and unions the way C member access does.

use anyhow::{bail, ensure, Context, Result};

const MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;

const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_TYPE_TAG: u32 = 18;

/// What is kept of one BTF type.
enum Type {
    /// A struct or union with its members.
    Composite {
        is_struct: bool,
        name: u32,
        members: Vec<Member>,
    },
    /// typedef / const / volatile / restrict / type tag of another type id.
    Alias(u32),
    /// Anything else (ints, pointers, functions...): never walked into.
    Other,
}

struct Member {
    name: u32,
    ty: u32,
    bit_offset: u32,
}

/// Parsed type section and string table of one BTF blob.
pub struct Btf {
    strings: Vec<u8>,
    /// Indexed by type id; id 0 is `void`.
    types: Vec<Type>,
}

impl Btf {
    /// Parses a raw BTF blob in host byte order (as the kernel exposes it).
    pub fn parse(data: &[u8]) -> Result<Self> {
        ensure!(data.len() >= HEADER_LEN, "BTF data too short");
        ensure!(
            u16::from_ne_bytes([data[0], data[1]]) == MAGIC,
            "not BTF data in host byte order (bad magic)"
        );
        let hdr_len = word(data, 4)? as usize;
        let section = |off: usize, len: usize| {
            let start = hdr_len + word(data, off)? as usize;
            let end = start + word(data, len)? as usize;
            data.get(start..end)
                .context("BTF section beyond the end of the data")
        };
        let type_data = section(8, 12)?;
        let strings = section(16, 20)?.to_vec();

        let mut types = vec![Type::Other];
        let mut at = 0;
        while at < type_data.len() {
            let (ty, len) = parse_type(type_data, at)?;
            types.push(ty);
            at += len;
        }
        Ok(Self { strings, types })
    }

    /// Byte offset of `path` (member names, outermost first) inside struct `name`.
    pub fn member_offset(&self, name: &str, path: &[&str]) -> Result<u32> {
        let mut id = self
            .types
            .iter()
            .position(|t| match t {
                Type::Composite {
                    is_struct: true,
                    name: n,
                    members,
                } => !members.is_empty() && self.name(*n) == name,
                _ => false,
            })
            .with_context(|| format!("the kernel's BTF has no struct {name}"))?;
        let mut bits = 0;
        for (depth, member) in path.iter().enumerate() {
            let (offset, ty) = self.find(id as u32, member).with_context(|| {
                format!(
                    "the kernel's BTF has no member {} in struct {name}",
                    path[..=depth].join(".")
                )
            })?;
            bits += offset;
            id = ty as usize;
        }
        if bits % 8 != 0 {
            bail!("{name}.{} is a bit field", path.join("."));
        }
        Ok(bits / 8)
    }

    /// (bit offset, type id) of member `name` of composite `id`, also inside anonymous members.
    fn find(&self, id: u32, name: &str) -> Option<(u32, u32)> {
        let Type::Composite { members, .. } = self.resolve(id)? else {
            return None;
        };
        members.iter().find_map(|m| match self.name(m.name) {
            n if n == name => Some((m.bit_offset, m.ty)),
            "" => self
                .find(m.ty, name)
                .map(|(bits, ty)| (m.bit_offset + bits, ty)),
            _ => None,
        })
    }

    /// The type behind typedefs and qualifiers.
    fn resolve(&self, mut id: u32) -> Option<&Type> {
        // A chain longer than the type table would be a cycle.
        for _ in 0..self.types.len() {
            match self.types.get(id as usize)? {
                Type::Alias(next) => id = *next,
                t => return Some(t),
            }
        }
        None
    }

    fn name(&self, offset: u32) -> &str {
        let rest = self.strings.get(offset as usize..).unwrap_or_default();
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).unwrap_or_default()
    }
}

/// Reads a host-order u32 at `at`.
fn word(data: &[u8], at: usize) -> Result<u32> {
    let b = data
        .get(at..at + 4)
        .context("BTF data ends inside a record")?;
    Ok(u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
}

/// One type record at `at`: what is kept of it and its length in bytes.
fn parse_type(data: &[u8], at: usize) -> Result<(Type, usize)> {
    let name = word(data, at)?;
    let info = word(data, at + 4)?;
    let size_or_type = word(data, at + 8)?;
    let vlen = (info & 0xffff) as usize;
    let kind = (info >> 24) & 0x1f;
    let kind_flag = info >> 31 == 1;
    let extra = match kind {
        // ptr, fwd, typedef, volatile, const, restrict, func, float, type tag
        2 | 7..=12 | 16 | 18 => 0,
        // int, var, decl tag
        1 | 14 | 17 => 4,
        // array
        3 => 12,
        // struct, union, datasec, enum64
        4 | 5 | 15 | 19 => 12 * vlen,
        // enum, func proto
        6 | 13 => 8 * vlen,
        _ => bail!("unknown BTF type kind {kind} (a newer kernel than this parser knows)"),
    };
    let ty = match kind {
        KIND_STRUCT | KIND_UNION => {
            let mut members = Vec::with_capacity(vlen);
            for i in 0..vlen {
                let m = at + 12 + 12 * i;
                let offset = word(data, m + 8)?;
                members.push(Member {
                    name: word(data, m)?,
                    ty: word(data, m + 4)?,
                    // With kind_flag the top 8 bits hold a bit-field size.
                    bit_offset: if kind_flag {
                        offset & 0xff_ffff
                    } else {
                        offset
                    },
                });
            }
            Type::Composite {
                is_struct: kind == KIND_STRUCT,
                name,
                members,
            }
        }
        KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG => {
            Type::Alias(size_or_type)
        }
        _ => Type::Other,
    };
    Ok((ty, 12 + extra))
}

#[cfg(test)]
mod tests {
    use super::*;

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
