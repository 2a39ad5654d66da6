//! TPC-C's random data (clause 4.3.2) and NURand with its C constants (clause 2.1.6).
//!
//! A small seeded generator of our own (SplitMix64): the kit needs uniform integers and strings,
//! nothing more, and a seed printed by `load` and `run` reproduces their choices exactly.

use std::fmt::Write as _;

/// A seeded pseudo-random generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng {
    state: u64,
}

/// The characters of a-strings (clause 4.3.2.2: at least 26 lower case, 26 upper case and 10
/// digits).
const ALPHANUMERIC: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// The syllables of C_LAST (clause 4.3.2.3).
const SYLLABLES: [&str; 10] = ["BAR", "OUGHT", "ABLE", "PRI", "PRES", "ESE", "ANTI", "CALLY", "ATION", "EING"];

impl Rng {
    /// A generator whose whole sequence follows from `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform integer in `[lo, hi]` (both included).
    pub fn uniform(&mut self, lo: i64, hi: i64) -> i64 {
        debug_assert!(lo <= hi);
        let span = (hi - lo) as u64 + 1;
        // Multiply-shift: unbiased enough for spans this small against 64 random bits.
        lo + ((u128::from(self.next_u64()) * u128::from(span)) >> 64) as i64
    }

    /// A uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// NURand(A, x, y) with constant `c` (clause 2.1.6).
    pub fn nurand(&mut self, a: i64, c: i64, x: i64, y: i64) -> i64 {
        (((self.uniform(0, a) | self.uniform(x, y)) + c) % (y - x + 1)) + x
    }

    /// A random a-string of length in `[min, max]`.
    pub fn astring(&mut self, min: usize, max: usize) -> String {
        let len = self.uniform(min as i64, max as i64) as usize;
        (0..len).map(|_| ALPHANUMERIC[self.uniform(0, ALPHANUMERIC.len() as i64 - 1) as usize] as char).collect()
    }

    /// A random n-string (digits) of length in `[min, max]`.
    pub fn nstring(&mut self, min: usize, max: usize) -> String {
        let len = self.uniform(min as i64, max as i64) as usize;
        (0..len).map(|_| char::from(b'0' + self.uniform(0, 9) as u8)).collect()
    }

    /// I_DATA or S_DATA: an a-string of 26 to 50 characters, with "ORIGINAL" at a random place
    /// in 10% of rows (clause 4.3.3.1).
    pub fn data_with_original(&mut self) -> String {
        let mut data = self.astring(26, 50);
        if self.uniform(1, 100) <= 10 {
            let at = self.uniform(0, data.len() as i64 - 8) as usize;
            data.replace_range(at..at + 8, "ORIGINAL");
        }
        data
    }

    /// A zip code: four random digits and "11111" (clause 4.3.2.7).
    pub fn zip(&mut self) -> String {
        let mut zip = self.nstring(4, 4);
        zip.push_str("11111");
        zip
    }

    /// A price or amount in hundredths, uniform in `[lo, hi]` hundredths.
    pub fn cents(&mut self, lo: i64, hi: i64) -> Cents {
        Cents(self.uniform(lo, hi))
    }

    /// Picks a non-uniform C_LAST number with NURand(255, 0, 999) (`names` is 1000 in a TPC-C
    /// database; fewer in a divided test database).
    pub fn last_name_number(&mut self, c: i64, names: i64) -> i64 {
        self.nurand(255, c, 0, names - 1)
    }
}

/// The customer last name made from a number in `[0, 999]` (clause 4.3.2.3).
pub fn last_name(number: i64) -> String {
    let n = number.clamp(0, 999) as usize;
    let mut name = String::with_capacity(15);
    for digit in [n / 100, (n / 10) % 10, n % 10] {
        name.push_str(SYLLABLES[digit]);
    }
    name
}

/// Money in hundredths (an exact decimal with two places), printed as SQL numeric text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cents(pub i64);

impl std::fmt::Display for Cents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        write!(f, "{sign}{}.{:02}", self.0.abs() / 100, self.0.abs() % 100)
    }
}

/// A rate in ten-thousandths (W_TAX, D_TAX, C_DISCOUNT: numeric(4,4)), printed as SQL text.
pub fn basis_points(value: i64) -> String {
    let mut out = String::from("0.");
    let _ = write!(out, "{value:04}");
    out
}

/// The three NURand constants C, per field (clause 2.1.6): C_LAST, C_ID and OL_I_ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Constants {
    /// C for C_LAST (A = 255).
    pub c_last: i64,
    /// C for C_ID (A = 1023).
    pub c_id: i64,
    /// C for OL_I_ID (A = 8191).
    pub ol_i_id: i64,
}

impl Constants {
    /// Random load-time constants.
    pub fn random(rng: &mut Rng) -> Constants {
        Constants { c_last: rng.uniform(0, 255), c_id: rng.uniform(0, 1023), ol_i_id: rng.uniform(0, 8191) }
    }

    /// Run-time constants for a database loaded with `self` (clause 2.1.6.1): C_ID and OL_I_ID may
    /// be any value; C_LAST's must differ from the load's by a delta in [65, 119] other than 96
    /// and 112, so that the run's last names are not the load's.
    pub fn for_run(&self, rng: &mut Rng) -> Constants {
        let valid: Vec<i64> = (0..=255).filter(|c| valid_c_last_delta(self.c_last, *c)).collect();
        let c_last = valid[rng.uniform(0, valid.len() as i64 - 1) as usize];
        Constants { c_last, c_id: rng.uniform(0, 1023), ol_i_id: rng.uniform(0, 8191) }
    }
}

/// Whether `run` is an allowed run-time C for C_LAST given the load-time `load` (clause 2.1.6.1).
pub fn valid_c_last_delta(load: i64, run: i64) -> bool {
    let delta = (run - load).abs();
    (65..=119).contains(&delta) && delta != 96 && delta != 112
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_names_follow_the_syllable_table() {
        assert_eq!(last_name(0), "BARBARBAR");
        assert_eq!(last_name(371), "PRICALLYOUGHT");
        assert_eq!(last_name(999), "EINGEINGEING");
    }

    #[test]
    fn nurand_stays_in_range_and_is_skewed() {
        let mut rng = Rng::new(7);
        let mut hits = vec![0u32; 1000];
        for _ in 0..200_000 {
            let n = rng.nurand(255, 123, 0, 999);
            assert!((0..=999).contains(&n));
            hits[n as usize] += 1;
        }
        // Non-uniform: the most frequent value is drawn far more often than the average (200).
        let max = *hits.iter().max().unwrap_or(&0);
        assert!(max > 600, "max {max}");
        for _ in 0..10_000 {
            assert!((1..=3000).contains(&rng.nurand(1023, 5, 1, 3000)));
            assert!((1..=100_000).contains(&rng.nurand(8191, 8000, 1, 100_000)));
        }
    }

    #[test]
    fn run_time_c_last_is_within_the_allowed_delta_of_the_load_time_one() {
        let mut rng = Rng::new(1);
        for load_c in 0..=255 {
            let load = Constants { c_last: load_c, c_id: 1, ol_i_id: 2 };
            for _ in 0..20 {
                let run = load.for_run(&mut rng);
                let delta = (run.c_last - load_c).abs();
                assert!((65..=119).contains(&delta) && delta != 96 && delta != 112, "{load_c} -> {}", run.c_last);
                assert!((0..=255).contains(&run.c_last));
                assert!((0..=1023).contains(&run.c_id) && (0..=8191).contains(&run.ol_i_id));
            }
        }
        assert!(!valid_c_last_delta(100, 196));
        assert!(!valid_c_last_delta(100, 212));
        assert!(!valid_c_last_delta(100, 164));
        assert!(valid_c_last_delta(100, 165));
        assert!(valid_c_last_delta(200, 81));
    }

    #[test]
    fn strings_have_their_lengths_and_alphabets() {
        let mut rng = Rng::new(3);
        let mut originals = 0;
        for _ in 0..2000 {
            let s = rng.astring(14, 24);
            assert!((14..=24).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()));
            let n = rng.nstring(16, 16);
            assert!(n.len() == 16 && n.bytes().all(|b| b.is_ascii_digit()));
            let z = rng.zip();
            assert!(z.len() == 9 && z.ends_with("11111"));
            let d = rng.data_with_original();
            assert!((26..=50).contains(&d.len()));
            originals += usize::from(d.contains("ORIGINAL"));
        }
        assert!((100..=300).contains(&originals), "{originals} of 2000 hold ORIGINAL");
    }

    #[test]
    fn money_prints_as_exact_decimals() {
        assert_eq!(Cents(0).to_string(), "0.00");
        assert_eq!(Cents(1).to_string(), "0.01");
        assert_eq!(Cents(-1000).to_string(), "-10.00");
        assert_eq!(Cents(999_999).to_string(), "9999.99");
        assert_eq!(basis_points(5), "0.0005");
        assert_eq!(basis_points(2000), "0.2000");
    }
}
