//! Test helpers: a deterministic random generator, temporary databases and sample type specs.

use super::{Collation, Db, IndexSpec, KeyKind, PartSpec, TypeSpec};

/// xorshift64* — deterministic, dependency-free randomness for property tests.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// Values of every magnitude, both signs.
    pub fn i64_wide(&mut self) -> i64 {
        let shift = self.below(64) as u32;
        (self.next() as i64) >> shift
    }
    pub fn i64_small(&mut self) -> i64 {
        self.below(21) as i64 - 10
    }
    /// Finite doubles of every magnitude (including subnormals), both signs.
    pub fn f64_wide(&mut self) -> f64 {
        loop {
            let v = f64::from_bits(self.next());
            if v.is_finite() {
                return v;
            }
        }
    }
    /// Short strings over a small alphabet that includes NUL and non-ASCII, so prefixes and
    /// equal strings are frequent.
    pub fn string_with_nuls(&mut self, max_len: u64) -> String {
        const ALPHABET: [char; 6] = ['\0', 'a', 'b', 'B', 'é', '\u{1F600}'];
        let len = self.below(max_len + 1);
        (0..len).map(|_| ALPHABET[self.below(ALPHABET.len() as u64) as usize]).collect()
    }
}

pub fn temp_db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    (dir, db)
}

/// `User { id: long (pk), username: string (case-insensitive), age: long?, phones: [string]
/// (multikey), first/last name composite }`.
pub fn user_spec() -> TypeSpec {
    TypeSpec {
        name: "User".into(),
        indexes: vec![
            IndexSpec::new("id", vec![PartSpec::new("id", KeyKind::Long)]),
            IndexSpec::new(
                "username",
                vec![PartSpec::new("username", KeyKind::String).collation(Collation::CaseInsensitive)],
            ),
            IndexSpec::new("age", vec![PartSpec::new("age", KeyKind::Long).nullable(true)]),
            IndexSpec::new("phones", vec![PartSpec::new("phones.*", KeyKind::String)]),
            IndexSpec::new(
                "full_name",
                vec![PartSpec::new("last", KeyKind::String), PartSpec::new("first", KeyKind::String)],
            ),
        ],
        ids: Vec::new(),
        building: Vec::new(),
        config_version: 0,
    }
}

/// The `id` fields of a page, in order.
pub fn ids(page: &super::Page) -> Vec<i64> {
    page.items.iter().map(|s| s.object["id"].as_i64().unwrap()).collect()
}

/// Stores users 1..=n: username `user{id:03}` (mixed case for odd ids), age id % 10 (null for
/// ids divisible by 7), score id * 3, phones [`p{id}`, `q{id%5}`], last name `L{id%4}`.
pub fn store_users(db: &Db, n: i64) {
    let spec = user_spec();
    db.write(|tx| {
        for id in 1..=n {
            super::objects::put(tx, &spec, user(id), &Default::default())?;
        }
        Ok::<_, super::StorageError>(())
    })
    .unwrap();
}

pub fn user(id: i64) -> serde_json::Value {
    let name = if id % 2 == 1 { format!("User{id:03}") } else { format!("user{id:03}") };
    let age = if id % 7 == 0 { serde_json::Value::Null } else { serde_json::json!(id % 10) };
    serde_json::json!({
        "id": id, "username": name, "age": age, "score": id * 3,
        "phones": [format!("p{id}"), format!("q{}", id % 5)],
        "last": format!("L{}", id % 4), "first": format!("F{id:03}"),
    })
}
