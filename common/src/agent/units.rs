//! Size and rate arguments in iperf3's notation, so `-b 100K -l 1K` translate one to one; the
//! scenario's `traffic.rate` and `traffic.len` are checked by the same functions.

/// Parses a bit rate: `100K` is 100 000 bits/s; K, M, G are powers of 1000 as in `iperf3 -b`.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    match parse(s, 1000)? {
        0 => Err("the rate must be above 0".into()),
        n => Ok(n),
    }
}

/// Parses a write size: `1K` is 1024 bytes; K, M are powers of 1024 as in `iperf3 -l`.
pub fn parse_len(s: &str) -> Result<usize, String> {
    match parse(s, 1024)? {
        n @ 1..=MAX_LEN => Ok(n as usize),
        _ => Err(format!("the length must be 1 to {MAX_LEN} bytes")),
    }
}

/// Largest write: one buffer is allocated per connection.
const MAX_LEN: u64 = 16 << 20;

/// A number with an optional K, M or G suffix (any case), decimals allowed (`1.5M`).
fn parse(s: &str, base: u64) -> Result<u64, String> {
    let s = s.trim();
    let (num, exp) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&s[..s.len() - 1], 1),
        Some('M') => (&s[..s.len() - 1], 2),
        Some('G') => (&s[..s.len() - 1], 3),
        _ => (s, 0),
    };
    let value: f64 = num
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("{s:?} is not a number with an optional K, M or G suffix"))?;
    Ok((value * base.pow(exp) as f64).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iperf_notation() {
        assert_eq!(parse_rate("100K"), Ok(100_000));
        assert_eq!(parse_rate("1.5m"), Ok(1_500_000));
        assert_eq!(parse_rate("800000"), Ok(800_000));
        assert_eq!(parse_len("1K"), Ok(1024));
        assert_eq!(parse_len("64"), Ok(64));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
        assert!(parse_len("0").is_err());
        assert!(parse_len("1G").is_err());
    }
}
