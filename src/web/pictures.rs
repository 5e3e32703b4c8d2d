//! Images as `data:` URLs (uncompressed BMP), so the page shows samples, triggers and examples with
//! plain `<img>` tags and no canvas bookkeeping.

use base64::Engine;

/// A BMP data URL of one channel-planar 8-bit image of `dims` = (channels, height, width).
pub fn data_url(image: &[u8], dims: (usize, usize, usize)) -> String {
    let (c, h, w) = dims;
    let row = (w * 3).div_ceil(4) * 4;
    let size = 54 + row * h;
    let mut b = Vec::with_capacity(size);
    b.extend_from_slice(b"BM");
    b.extend_from_slice(&(size as u32).to_le_bytes());
    b.extend_from_slice(&[0, 0, 0, 0, 54, 0, 0, 0, 40, 0, 0, 0]);
    b.extend_from_slice(&(w as i32).to_le_bytes());
    // Negative height: rows top to bottom.
    b.extend_from_slice(&(-(h as i32)).to_le_bytes());
    b.extend_from_slice(&[1, 0, 24, 0, 0, 0, 0, 0]);
    b.extend_from_slice(&((row * h) as u32).to_le_bytes());
    b.extend_from_slice(&[0; 16]);
    let plane = h * w;
    for y in 0..h {
        for x in 0..w {
            let px = |ch: usize| image[(ch.min(c - 1)) * plane + y * w + x];
            b.extend_from_slice(&[px(2), px(1), px(0)]);
        }
        b.resize(b.len() + row - w * 3, 0);
    }
    format!("data:image/bmp;base64,{}", base64::engine::general_purpose::STANDARD.encode(b))
}
