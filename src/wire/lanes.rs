//! Sixteen bytes compared at once: which bytes of a block are a given byte, or below a space or
//! not ASCII, as one bit each, and sixty-four as four such blocks, for the long strings. SSE2 on
//! x86-64, through `safe_arch` (the crate has no `unsafe`, and `std::arch`'s comparisons need
//! it); a loop over the bytes elsewhere, which the tests also hold against the SSE2 one. The JSON passes (`json_valid`, `json_scan`) use it to jump from one
//! byte that matters to the next: where a string ends, where an escape or a bracket is;
//! `json_valid` reads a long string's chunks as two 64-bit masks ([`masks64`]).

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
        None => (Lanes::load(&zero_padded(bytes, i)), true),
    }
}

/// The sixty-four bytes of `bytes` from `i`: borrowed, or copied into `padded` with zeros past
/// the end of `bytes`.
#[inline(always)]
pub fn chunk_at<'a>(bytes: &'a [u8], i: usize, padded: &'a mut [u8; 64]) -> &'a [u8; 64] {
    match bytes.get(i..).and_then(<[u8]>::first_chunk::<64>) {
        Some(chunk) => chunk,
        None => {
            *padded = zero_padded(bytes, i);
            padded
        }
    }
}

/// What is left of `bytes` from `i`, fewer than `N` bytes, followed by zeros.
#[inline(always)]
fn zero_padded<const N: usize>(bytes: &[u8], i: usize) -> [u8; N] {
    let mut padded = [0; N];
    let rest = bytes.get(i..).unwrap_or_default();
    padded[..rest.len()].copy_from_slice(rest);
    padded
}

/// Two masks of a chunk's sixty-four bytes, one bit per byte (the first byte's is bit 0): where
/// each of the two comparisons `test` makes holds.
#[inline(always)]
pub fn masks64(chunk: &[u8; 64], test: impl Fn(Lanes) -> (Lanes, Lanes)) -> (u64, u64) {
    let blocks = chunk.as_chunks::<16>().0;
    let block = |k: usize| {
        let (a, b) = test(Lanes::load(&blocks[k]));
        (
            u64::from(a.bits()) << (16 * k),
            u64::from(b.bits()) << (16 * k),
        )
    };
    let ((a0, b0), (a1, b1), (a2, b2), (a3, b3)) = (block(0), block(1), block(2), block(3));
    (a0 | a1 | a2 | a3, b0 | b1 | b2 | b3)
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

#[cfg(test)]
mod chunk_tests {
    use super::{chunk_at, masks64};

    #[test]
    fn a_chunks_masks_have_one_bit_per_byte_in_order_and_zeros_past_the_end() {
        let bytes: Vec<u8> = (0..200u32)
            .map(|k| [b'"', b'a', b'\\', 0x01, 0xc3][(k * k % 7 % 5) as usize])
            .collect();
        let mut padded = [0; 64];
        for i in [0, 1, 15, 16, 63, 64, 100, 136, 137, 150, 199, 200, 250] {
            let chunk = *chunk_at(&bytes, i, &mut padded);
            let (quotes, others) = masks64(&chunk, |b| (b.eq(b'"'), b.control_or_non_ascii()));
            for (k, &read) in chunk.iter().enumerate() {
                let byte = bytes.get(i + k).copied().unwrap_or(0);
                assert_eq!(read, byte, "byte {k} from {i}");
                assert_eq!(quotes >> k & 1 == 1, byte == b'"', "quote bit {k} from {i}");
                let other = !(0x20..0x80).contains(&byte);
                assert_eq!(
                    others >> k & 1 == 1,
                    other,
                    "control or non-ASCII bit {k} from {i}"
                );
            }
        }
    }
}
