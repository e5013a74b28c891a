//! Prints, for a sled store directory, how many keys and bytes each key space holds:
//! `store_census DIR`.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).ok_or("usage: store_census DIR")?;
    let db = sled::Config::new().path(&dir).open()?;
    let mut spaces: std::collections::BTreeMap<String, (u64, u64, u64)> = Default::default();
    for item in db.iter() {
        let (k, v) = item?;
        let Some(&first) = k.first() else { continue };
        let mut space = String::from_utf8_lossy(&[first]).into_owned();
        if first == b'P' && k.len() > 2 {
            let rest = &k[2..];
            let concept_end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
            let sub = rest
                .get(concept_end + 1..concept_end + 2)
                .map(|b| b[0] as char)
                .unwrap_or('?');
            space = format!("P {} {}", String::from_utf8_lossy(&rest[..concept_end]), sub);
        }
        let e = spaces.entry(space).or_default();
        e.0 += 1;
        e.1 += v.len() as u64;
        e.2 = e.2.max(v.len() as u64);
    }
    for (space, (n, bytes, max)) in spaces {
        println!("{space:<24} {n:>8} keys {bytes:>12} bytes  max {max}");
    }
    Ok(())
}
