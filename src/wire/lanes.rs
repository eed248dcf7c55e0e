//! Sixteen bytes compared at once: which bytes of a block are a given byte, or below a space or
//! not ASCII, as one bit each. SSE2 on x86-64, through `safe_arch` (the crate has no `unsafe`,
//! and `std::arch`'s comparisons need it); a loop over the bytes elsewhere, which the tests also
//! hold against the SSE2 one. The JSON passes (`json_valid`, `json_scan`) use it to jump from one
//! byte that matters to the next: where a string ends, where an escape or a bracket is.

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
pub use sse2::Lanes;

#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
pub use bytewise::Lanes;

/// The sixteen bytes of `bytes` from `i`, zeros past its end, and whether its end is among them
/// (or before them).
#[inline(always)]
pub fn block_at(bytes: &[u8], i: usize) -> (Lanes, bool) {
    match bytes.get(i..).and_then(<[u8]>::first_chunk::<16>) {
        Some(block) => (Lanes::load(block), false),
        None => {
            let mut block = [0; 16];
            let rest = bytes.get(i..).unwrap_or_default();
            block[..rest.len()].copy_from_slice(rest);
            (Lanes::load(&block), true)
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
pub mod sse2 {
    use safe_arch::{
        cmp_eq_mask_i8_m128i, cmp_lt_mask_i8_m128i, load_unaligned_m128i, m128i,
        move_mask_i8_m128i, set_splat_i8_m128i,
    };

    /// A block of sixteen bytes, or a comparison's result on each (all ones where it held).
    #[derive(Clone, Copy)]
    pub struct Lanes(m128i);

    impl Lanes {
        #[inline(always)]
        pub fn load(block: &[u8; 16]) -> Self {
            Lanes(load_unaligned_m128i(block))
        }

        /// Where the byte is `byte`.
        #[inline(always)]
        pub fn eq(self, byte: u8) -> Self {
            Lanes(cmp_eq_mask_i8_m128i(self.0, set_splat_i8_m128i(byte as i8)))
        }

        /// Where the byte is below 0x20 or not ASCII: below 0x20 as a signed byte.
        #[inline(always)]
        pub fn control_or_non_ascii(self) -> Self {
            Lanes(cmp_lt_mask_i8_m128i(self.0, set_splat_i8_m128i(0x20)))
        }

        #[inline(always)]
        pub fn or(self, other: Self) -> Self {
            Lanes(self.0 | other.0)
        }

        /// Bit `k` set where byte `k` is.
        #[inline(always)]
        pub fn bits(self) -> u32 {
            move_mask_i8_m128i(self.0) as u32
        }
    }
}

#[cfg(any(test, not(all(target_arch = "x86_64", target_feature = "sse2"))))]
pub mod bytewise {
    /// [`super::Lanes`] a byte at a time.
    #[derive(Clone, Copy)]
    pub struct Lanes([u8; 16]);

    impl Lanes {
        #[inline(always)]
        pub fn load(block: &[u8; 16]) -> Self {
            Lanes(*block)
        }

        #[inline(always)]
        pub fn eq(self, byte: u8) -> Self {
            Lanes(self.0.map(|b| if b == byte { 0xff } else { 0 }))
        }

        #[inline(always)]
        pub fn control_or_non_ascii(self) -> Self {
            Lanes(
                self.0
                    .map(|b| if (0x20..0x80).contains(&b) { 0 } else { 0xff }),
            )
        }

        #[inline(always)]
        pub fn or(self, other: Self) -> Self {
            let mut out = self.0;
            for (o, b) in out.iter_mut().zip(other.0) {
                *o |= b;
            }
            Lanes(out)
        }

        #[inline(always)]
        pub fn bits(self) -> u32 {
            (0..16).fold(0, |bits, k| bits | u32::from(self.0[k] >> 7) << k)
        }
    }
}

#[cfg(all(test, target_arch = "x86_64", target_feature = "sse2"))]
mod tests {
    use super::{bytewise, sse2};

    /// Every comparison the passes make, both ways.
    fn both(block: &[u8; 16]) -> [(u32, u32); 4] {
        let (s, b) = (sse2::Lanes::load(block), bytewise::Lanes::load(block));
        [
            (s.eq(b'"').bits(), b.eq(b'"').bits()),
            (s.eq(0x80).bits(), b.eq(0x80).bits()),
            (
                s.control_or_non_ascii().bits(),
                b.control_or_non_ascii().bits(),
            ),
            (
                s.eq(b'\\').or(s.eq(b'{')).bits(),
                b.eq(b'\\').or(b.eq(b'{')).bits(),
            ),
        ]
    }

    #[test]
    fn the_sse2_lanes_flag_what_the_bytewise_ones_do() {
        // Every byte value at every place, among spaces and among bytes of every other kind.
        for filler in [b' ', b'a', 0x1f, 0x7f, 0x80, 0xff, b'"'] {
            for at in 0..16 {
                for byte in 0..=255u8 {
                    let mut block = [filler; 16];
                    block[at] = byte;
                    for (sse2, bytewise) in both(&block) {
                        assert_eq!(sse2, bytewise, "{block:?}");
                    }
                }
            }
        }
        let one: [u8; 16] = std::array::from_fn(|k| [b'"', 0x20, 0x1f, 0x7f, 0x80][k % 5]);
        let lanes = sse2::Lanes::load(&one);
        assert_eq!(lanes.eq(b'"').bits(), 0b1000_0100_0010_0001);
        let flagged = [2, 4, 7, 9, 12, 14].iter().fold(0, |bits, k| bits | 1 << k);
        assert_eq!(lanes.control_or_non_ascii().bits(), flagged);
    }
}
