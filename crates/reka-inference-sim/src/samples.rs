//! Sample inputs for tests and examples: small, valid images to send as an
//! `image_url`, so a test of an image endpoint (image-to-video, edit,
//! image-to-bbox) does not need an image file or an image library.
//!
//! ```
//! use reka_inference_sim::samples;
//! let uri = samples::png_data_uri(3, 2);
//! assert!(uri.starts_with("data:image/png;base64,iVBORw0KGgo"));
//! ```

use base64::Engine;

/// A `width` x `height` RGB PNG (a colour gradient), at least 1 x 1.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let (w, h) = (width.max(1), height.max(1));
    crate::media::png(w, h, |x, y| {
        [
            (x * 255 / w) as u8,
            (y * 255 / h) as u8,
            ((x + y) % 256) as u8,
        ]
    })
}

/// [`png`] as a `data:image/png;base64,...` URI, the form an `image_url`
/// takes inline.
pub fn png_data_uri(width: u32, height: u32) -> String {
    data_uri("image/png", &png(width, height))
}

/// Any bytes as a base64 `data:` URI of the given media type.
pub fn data_uri(media_type: &str, bytes: &[u8]) -> String {
    format!(
        "data:{media_type};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}
