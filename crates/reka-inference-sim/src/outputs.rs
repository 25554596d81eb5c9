//! What a completed job produces: the illustrative `output` JSON and the
//! files it points at, both derived deterministically from `input.prompt`
//! (or `input.text`) and the input image's SHA-256, so nothing is stored
//! per job. An image job's output image has its input image's dimensions
//! (within [`MAX_OUTPUT_PIXELS`] and [`MAX_OUTPUT_SIDE`]).

use serde_json::{Value, json};

use crate::catalog::OutputKind;
use crate::images::InputImage;
use crate::media;
use crate::rng;

/// Side of generated images and video frames, in pixels.
const SIDE: u32 = 64;
/// Number of frames of a generated video.
const FRAMES: usize = 12;
/// Frame delay of a generated video, in hundredths of a second.
const FRAME_DELAY_CS: u16 = 10;
/// Sample rate of generated speech.
const SAMPLE_RATE: u32 = 16_000;
/// Most pixels of an output image made to an input's dimensions (2048 x
/// 2048): a larger input gives an output scaled down to fit, keeping its
/// aspect ratio, since the file is made again for every download.
pub(crate) const MAX_OUTPUT_PIXELS: u64 = 2048 * 2048;
/// Longest side of an output image made to an input's dimensions.
pub(crate) const MAX_OUTPUT_SIDE: u32 = 4096;

/// The dimensions of an output image: the input image's when it has
/// readable ones (scaled down to fit the limits above), else 64 x 64.
pub(crate) fn image_size(image: Option<&InputImage>) -> (u32, u32) {
    let Some((w, h)) = image.and_then(|i| match i {
        InputImage::Inline(f) => f.dimensions,
        InputImage::Url(_) => None,
    }) else {
        return (SIDE, SIDE);
    };
    let (wf, hf) = (f64::from(w), f64::from(h));
    let scale = (MAX_OUTPUT_PIXELS as f64 / (wf * hf))
        .sqrt()
        .min(f64::from(MAX_OUTPUT_SIDE) / wf)
        .min(f64::from(MAX_OUTPUT_SIDE) / hf)
        .min(1.0);
    // Float to int casts saturate; the result is within 1..=MAX_OUTPUT_SIDE.
    let fit = |v: f64| ((v * scale).round() as u32).clamp(1, MAX_OUTPUT_SIDE);
    (fit(wf), fit(hf))
}

/// The seed of an output's colours: its prompt, and its input image's hash.
fn content_hash(prompt: &str, image: Option<&InputImage>) -> u64 {
    let h = rng::str_hash(prompt);
    match image.and_then(InputImage::sha256) {
        Some(sha) => rng::hash(&[h, rng::str_hash(sha)]),
        None => h,
    }
}

/// The text outputs are derived from.
pub(crate) fn prompt_of(input: &Value) -> &str {
    ["prompt", "text"]
        .iter()
        .find_map(|k| input.get(*k).and_then(Value::as_str))
        .unwrap_or("")
}

/// The file name an output of this kind is served under.
pub(crate) fn file_name(kind: OutputKind) -> Option<&'static str> {
    match kind {
        OutputKind::Image => Some("image.png"),
        OutputKind::Video => Some("video.gif"),
        OutputKind::Audio => Some("speech.wav"),
        OutputKind::Boxes => None,
    }
}

fn speech_seconds(prompt: &str) -> f64 {
    let words = prompt.split_whitespace().count() as f64;
    (0.5 + 0.3 * words).min(5.0)
}

/// The `output` object of a completed job whose files live under `files_url`
/// (`<base>/_sim/files/<request_id>`).
pub(crate) fn output_json(
    kind: OutputKind,
    input: &Value,
    image: Option<&InputImage>,
    files_url: &str,
) -> Value {
    let prompt = prompt_of(input);
    let url = |name: &str| format!("{files_url}/{name}");
    match kind {
        OutputKind::Image => {
            let (width, height) = image_size(image);
            json!({
                "images": [{"url": url("image.png"), "content_type": "image/png", "width": width, "height": height}]
            })
        }
        OutputKind::Video => json!({
            "video": {
                "url": url("video.gif"),
                "content_type": "image/gif",
                "width": SIDE,
                "height": SIDE,
                "duration": FRAMES as f64 * f64::from(FRAME_DELAY_CS) / 100.0
            }
        }),
        OutputKind::Audio => json!({
            "audio": {"url": url("speech.wav"), "content_type": "audio/wav", "duration": speech_seconds(prompt)}
        }),
        OutputKind::Boxes => json!({ "boxes": boxes(prompt) }),
    }
}

/// Bounding boxes in coordinates normalised to `[0, 1]`, one per named thing.
fn boxes(prompt: &str) -> Vec<Value> {
    let mut labels: Vec<&str> = prompt
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 2)
        .take(3)
        .collect();
    if labels.is_empty() {
        labels.push("object");
    }
    labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let h = rng::hash(&[rng::str_hash(prompt), i as u64]);
            let r = |k: u64| rng::unit(rng::mix(h ^ k));
            let (w, ht) = (0.1 + 0.4 * r(1), 0.1 + 0.4 * r(2));
            let round = |v: f64| (v * 1000.0).round() / 1000.0;
            json!({
                "label": label,
                "score": round(0.5 + 0.49 * r(3)),
                "x": round((1.0 - w) * r(4)),
                "y": round((1.0 - ht) * r(5)),
                "width": round(w),
                "height": round(ht)
            })
        })
        .collect()
}

/// The bytes and content type of a served file, or `None` for a wrong name.
pub(crate) fn file(
    kind: OutputKind,
    input: &Value,
    image: Option<&InputImage>,
    name: &str,
) -> Option<(&'static str, Vec<u8>)> {
    if file_name(kind) != Some(name) {
        return None;
    }
    let prompt = prompt_of(input);
    let h = content_hash(prompt, image);
    let c = |shift: u32| (h >> shift) as u8;
    let (base, accent) = ([c(0), c(8), c(16)], [c(24), c(32), c(40)]);
    Some(match kind {
        OutputKind::Image => {
            let (width, height) = image_size(image);
            (
                "image/png",
                media::png(width, height, |x, y| {
                    let t = (x + y) as f32 / (width + height) as f32;
                    let mix = |a: u8, b: u8| (f32::from(a) * (1.0 - t) + f32::from(b) * t) as u8;
                    [
                        mix(base[0], accent[0]),
                        mix(base[1], accent[1]),
                        mix(base[2], accent[2]),
                    ]
                }),
            )
        }
        OutputKind::Video => {
            let palette = [base, accent, [255, 255, 255], [0, 0, 0]];
            let frames = (0..FRAMES)
                .map(|f| {
                    let bar = (f as u32 * SIDE / FRAMES as u32, SIDE / 6);
                    (0..SIDE * SIDE)
                        .map(|p| {
                            let (x, y) = (p % SIDE, p / SIDE);
                            if x >= bar.0 && x < bar.0 + bar.1 {
                                1
                            } else {
                                u8::from(y % 16 == 0) * 2
                            }
                        })
                        .collect()
                })
                .collect::<Vec<Vec<u8>>>();
            (
                "image/gif",
                media::gif(SIDE as u16, SIDE as u16, &palette, &frames, FRAME_DELAY_CS),
            )
        }
        OutputKind::Audio => {
            let secs = speech_seconds(prompt);
            let freq = 220.0 + (h % 440) as f64;
            let n = (secs * f64::from(SAMPLE_RATE)) as usize;
            let samples: Vec<i16> = (0..n)
                .map(|i| {
                    let t = i as f64 / f64::from(SAMPLE_RATE);
                    (8_000.0 * (std::f64::consts::TAU * freq * t).sin()) as i16
                })
                .collect();
            ("audio/wav", media::wav(SAMPLE_RATE, &samples))
        }
        OutputKind::Boxes => return None,
    })
}
