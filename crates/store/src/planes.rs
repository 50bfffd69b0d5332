//! Byte planes: the transform behind the store's plane codecs.
//!
//! Numeric arrays (the bulk of a physics project: `float64` signals, `int32` label maps) change
//! mostly in their low bytes. Stored as they are, every element mixes slowly varying high bytes
//! with noisy low bytes, and zstd finds few matches. Split into planes, byte 0 of every element,
//! then byte 1 of every element, and so on, the high planes become long, highly repetitive runs
//! and the noisy planes are left alone. zstd then compresses smaller and several times faster
//! (HDF5 and Blosc call the same transform "shuffle").
//!
//! For a width `w` and `n = len / w` whole elements, plane `k` is byte `k` of each element, in
//! order; the planes follow one another and the `len % w` trailing bytes close the buffer as they
//! are. The transform is a permutation of the input, so its length is the input's.

/// Splits `src` into `W` byte planes.
pub(crate) fn split<const W: usize>(src: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; src.len()];
    let n = src.len() / W;
    let (body, tail) = src.split_at(n * W);
    // Eight elements at a time: an 8 x W byte block, transposed in registers.
    let groups = n / 8;
    for g in 0..groups {
        let block = &body[g * 8 * W..(g + 1) * 8 * W];
        let lanes = transpose_in::<W>(block);
        for (k, lane) in lanes.iter().enumerate() {
            out[k * n + g * 8..k * n + g * 8 + 8].copy_from_slice(&lane.to_le_bytes());
        }
    }
    for i in groups * 8..n {
        for k in 0..W {
            out[k * n + i] = body[i * W + k];
        }
    }
    out[n * W..].copy_from_slice(tail);
    out
}

/// Joins `W` byte planes back into elements: the inverse of [`split`]. The output is written in
/// order, so it is never zero-filled first.
pub(crate) fn join<const W: usize>(src: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(src.len());
    let n = src.len() / W;
    let groups = n / 8;
    let mut block = [0u8; 64];
    for g in 0..groups {
        let mut lanes = [0u64; W];
        for (k, lane) in lanes.iter_mut().enumerate() {
            let at = k * n + g * 8;
            *lane = u64::from_le_bytes(src[at..at + 8].try_into().expect("8 bytes"));
        }
        transpose_out::<W>(lanes, &mut block[..8 * W]);
        out.extend_from_slice(&block[..8 * W]);
    }
    for i in groups * 8..n {
        out.extend((0..W).map(|k| src[k * n + i]));
    }
    out.extend_from_slice(&src[n * W..]);
    out
}

/// Eight `W`-byte elements in, `W` words out: word `k` holds byte `k` of each element, element
/// `i` in byte `i`.
#[inline(always)]
fn transpose_in<const W: usize>(block: &[u8]) -> [u64; W] {
    let mut rows = [0u64; 8];
    for (i, row) in rows.iter_mut().enumerate() {
        let mut bytes = [0u8; 8];
        bytes[..W].copy_from_slice(&block[i * W..(i + 1) * W]);
        *row = u64::from_le_bytes(bytes);
    }
    let cols = transpose8(rows);
    let mut lanes = [0u64; W];
    lanes.copy_from_slice(&cols[..W]);
    lanes
}

/// The inverse of [`transpose_in`], writing the eight elements into `block`.
#[inline(always)]
fn transpose_out<const W: usize>(lanes: [u64; W], block: &mut [u8]) {
    let mut cols = [0u64; 8];
    cols[..W].copy_from_slice(&lanes);
    let rows = transpose8(cols);
    for (i, row) in rows.iter().enumerate() {
        block[i * W..(i + 1) * W].copy_from_slice(&row.to_le_bytes()[..W]);
    }
}

/// Transposes an 8 x 8 byte matrix held as eight little-endian words (byte `c` of word `r` goes
/// to byte `r` of word `c`), in three rounds of block swaps. Its own inverse.
#[inline(always)]
fn transpose8(mut a: [u64; 8]) -> [u64; 8] {
    for (i, j) in [(0, 4), (1, 5), (2, 6), (3, 7)] {
        let t = ((a[i] >> 32) ^ a[j]) & 0x0000_0000_FFFF_FFFF;
        a[i] ^= t << 32;
        a[j] ^= t;
    }
    for (i, j) in [(0, 2), (1, 3), (4, 6), (5, 7)] {
        let t = ((a[i] >> 16) ^ a[j]) & 0x0000_FFFF_0000_FFFF;
        a[i] ^= t << 16;
        a[j] ^= t;
    }
    for (i, j) in [(0, 1), (2, 3), (4, 5), (6, 7)] {
        let t = ((a[i] >> 8) ^ a[j]) & 0x00FF_00FF_00FF_00FF;
        a[i] ^= t << 8;
        a[j] ^= t;
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The definition, one byte at a time.
    fn split_slowly(src: &[u8], w: usize) -> Vec<u8> {
        let n = src.len() / w;
        let mut out = Vec::with_capacity(src.len());
        for k in 0..w {
            out.extend((0..n).map(|i| src[i * w + k]));
        }
        out.extend_from_slice(&src[n * w..]);
        out
    }

    #[test]
    fn planes_of_a_small_example() {
        let src = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17];
        assert_eq!(
            split::<8>(&src),
            [1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15, 8, 16, 17]
        );
        assert_eq!(
            split::<4>(&src),
            [1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, 4, 8, 12, 16, 17]
        );
    }

    proptest! {
        #[test]
        fn split_matches_the_definition_and_join_undoes_it(
            src in prop::collection::vec(any::<u8>(), 0..700)
        ) {
            let s8 = split::<8>(&src);
            prop_assert_eq!(&s8, &split_slowly(&src, 8));
            prop_assert_eq!(join::<8>(&s8), src.clone());
            let s4 = split::<4>(&src);
            prop_assert_eq!(&s4, &split_slowly(&src, 4));
            prop_assert_eq!(join::<4>(&s4), src);
        }
    }
}
