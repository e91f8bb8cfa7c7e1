//! CUDA launch code for the Haar wavelet transform (device code: kernels/haar.cu).

use crate::backend::cuda::{Arg, CudaBackend, CudaBuffer};
use crate::{Error, Result};

const FILE: &str = "haar.cu";

/// Below this, the kernel indexes with 32 bits; 2^31 rather than 2^32 so that a grid-stride step past
/// the last index cannot wrap around.
const NARROW_LIMIT: u64 = i32::MAX as u64;

/// One level of the 2-D Haar transform of `x`, shaped (N, C, H, W): returns (N, 4C, H/2, W/2) with the
/// channel blocks [LL, HL, LH, HH] (definition in kernels/haar.cu). H and W must be even.
pub fn haar_dwt_cuda(
    be: &CudaBackend,
    x: &CudaBuffer,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
) -> Result<CudaBuffer> {
    const OP: &str = "haar_dwt";
    if !h.is_multiple_of(2) || !w.is_multiple_of(2) {
        return Err(Error::shape(
            OP,
            format!("input (N, C, H, W) = ({n}, {c}, {h}, {w}): H and W must be even (pad or crop first)"),
        ));
    }
    let len = [n, c, h, w].iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if len != Some(x.len()) {
        return Err(Error::shape(
            OP,
            format!("input buffer holds {} floats, but shape ({n}, {c}, {h}, {w}) needs {len:?}", x.len()),
        ));
    }
    be.check_owned(OP, &[x])?;

    // Same number of elements out as in: each 2x2 block becomes one value in each of 4 channels.
    let y = be.alloc_uninit(x.len())?;
    if !x.is_empty() {
        let k = "haar_dwt_f32";
        let blocks = (x.len() / 4) as u64;
        let wide = u32::from(x.len() as u64 > NARROW_LIMIT);
        let (c, h, w) = (c as u64, h as u64, w as u64);
        // The arguments match `haar_dwt_f32(const float*, float*, u64 c, u64 h, u64 w, u64 blocks,
        // u32 wide)`; both buffers hold N*C*H*W floats and H, W are even.
        be.launch(FILE, k, be.stride_launch(k, blocks), &[Arg::Buf(x), Arg::Buf(&y), Arg::U64(c), Arg::U64(h), Arg::U64(w), Arg::U64(blocks), Arg::U32(wide)])?;
    }
    Ok(y)
}

/// Inverse of [`haar_dwt_cuda`]: `x` shaped (N, 4C, H, W) with channel blocks [LL, HL, LH, HH] gives
/// (N, C, 2H, 2W).
pub fn haar_iwt_cuda(be: &CudaBackend, x: &CudaBuffer, n: usize, c4: usize, h: usize, w: usize) -> Result<CudaBuffer> {
    const OP: &str = "haar_iwt";
    if !c4.is_multiple_of(4) {
        return Err(Error::shape(OP, format!("input (N, C, H, W) = ({n}, {c4}, {h}, {w}): C must be a multiple of 4")));
    }
    let len = [n, c4, h, w].iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    if len != Some(x.len()) {
        return Err(Error::shape(OP, format!("input buffer holds {} floats, but shape ({n}, {c4}, {h}, {w}) needs {len:?}", x.len())));
    }
    be.check_owned(OP, &[x])?;
    let y = be.alloc_uninit(x.len())?;
    if !x.is_empty() {
        let k = "haar_iwt_f32";
        let blocks = (x.len() / 4) as u64;
        let wide = u32::from(x.len() as u64 > NARROW_LIMIT);
        be.launch(FILE, k, be.stride_launch(k, blocks), &[Arg::Buf(x), Arg::Buf(&y), Arg::U64((c4 / 4) as u64), Arg::U64(h as u64), Arg::U64(w as u64), Arg::U64(blocks), Arg::U32(wide)])?;
    }
    Ok(y)
}
