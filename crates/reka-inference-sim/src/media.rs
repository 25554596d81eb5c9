//! Tiny hand-rolled encoders for the files outputs point at: PNG (stored
//! deflate), WAV (16-bit PCM) and animated GIF (LZW with fixed-width codes).
//! They favour being small and obviously valid over compressing well.

/// CRC-32 (IEEE), as PNG chunks need.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Adler-32, as zlib streams need.
fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// A zlib stream made of uncompressed deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
    }
    while let Some(chunk) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// An 8-bit RGB PNG whose pixel `(x, y)` is `pixel(x, y)`.
pub(crate) fn png(width: u32, height: u32, pixel: impl Fn(u32, u32) -> [u8; 3]) -> Vec<u8> {
    let mut raw = Vec::with_capacity(((width * 3 + 1) * height) as usize);
    for y in 0..height {
        raw.push(0); // filter type: none
        for x in 0..width {
            raw.extend_from_slice(&pixel(x, y));
        }
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // depth 8, RGB, deflate, no filter, no interlace
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"IDAT", &zlib_stored(&raw));
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A mono 16-bit PCM WAV file.
pub(crate) fn wav(sample_rate: u32, samples: &[i16]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&(sample_rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

/// GIF LZW minimum code size: 7 bits, so a 128-colour palette and 8-bit codes.
const GIF_MIN_CODE: u8 = 7;
/// Pixels between clear codes, so the code table never grows past 8 bits.
const GIF_CLEAR_EVERY: usize = 100;

/// An endlessly looping animated GIF. `palette` has at most 128 colours;
/// each frame is `width * height` palette indices; `delay_cs` is the frame
/// delay in hundredths of a second.
pub(crate) fn gif(
    width: u16,
    height: u16,
    palette: &[[u8; 3]],
    frames: &[Vec<u8>],
    delay_cs: u16,
) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.extend_from_slice(&[0xF0 | (GIF_MIN_CODE - 1), 0, 0]); // global table of 2^7 colours
    for i in 0..128 {
        out.extend_from_slice(&palette.get(i).copied().unwrap_or([0, 0, 0]));
    }
    // NETSCAPE2.0: loop forever.
    out.extend_from_slice(&[0x21, 0xFF, 0x0B]);
    out.extend_from_slice(b"NETSCAPE2.0");
    out.extend_from_slice(&[0x03, 0x01, 0x00, 0x00, 0x00]);
    for frame in frames {
        out.extend_from_slice(&[0x21, 0xF9, 0x04, 0x00]);
        out.extend_from_slice(&delay_cs.to_le_bytes());
        out.extend_from_slice(&[0x00, 0x00]);
        out.push(0x2C);
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&width.to_le_bytes());
        out.extend_from_slice(&height.to_le_bytes());
        out.push(0);
        out.push(GIF_MIN_CODE);
        let data = gif_lzw(frame);
        for block in data.chunks(255) {
            out.push(block.len() as u8);
            out.extend_from_slice(block);
        }
        out.push(0);
    }
    out.push(0x3B);
    out
}

/// "Uncompressed" LZW: every pixel is its own 8-bit literal code, with a
/// clear code often enough that decoders never widen the codes.
fn gif_lzw(pixels: &[u8]) -> Vec<u8> {
    let clear = 1u16 << GIF_MIN_CODE;
    let end = clear + 1;
    let mut codes = Vec::with_capacity(pixels.len() + pixels.len() / GIF_CLEAR_EVERY + 2);
    for chunk in pixels.chunks(GIF_CLEAR_EVERY) {
        codes.push(clear);
        codes.extend(chunk.iter().map(|&p| u16::from(p & 0x7F)));
    }
    codes.push(end);
    // Every code is 8 bits wide, so packing is one byte per code.
    codes.into_iter().map(|c| c as u8).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_has_signature_and_known_crc() {
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
        let p = png(2, 2, |x, y| [x as u8, y as u8, 0]);
        assert!(p.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(p.ends_with(&[0xAE, 0x42, 0x60, 0x82]));
    }

    #[test]
    fn wav_header_is_consistent() {
        let w = wav(8000, &[0, 1, -1]);
        assert_eq!(&w[0..4], b"RIFF");
        assert_eq!(
            u32::from_le_bytes([w[4], w[5], w[6], w[7]]) as usize,
            w.len() - 8
        );
    }

    #[test]
    fn gif_is_framed() {
        let g = gif(
            4,
            4,
            &[[0, 0, 0], [255, 255, 255]],
            &[vec![1; 16], vec![0; 16]],
            10,
        );
        assert!(g.starts_with(b"GIF89a"));
        assert_eq!(g.last(), Some(&0x3B));
    }
}
