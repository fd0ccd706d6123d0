//! The reward's models (docs/method.md §3): the scorer CLIP (OpenAI ViT-L/14 text and vision towers
//! with projections, fed open_clip's tokens and CLIP image preprocessing) and the LAION aesthetic
//! head on the L2-normalised image embedding; the reward itself is `reward::math`.

use std::path::Path;

use crate::runtime::graph::{Feed, Graph};
use crate::diffusion::pipeline::{report, Image, Progress, Stage};
use crate::reward::aesthetic::AestheticHead;
use crate::reward::preprocess::{clip_preprocess, CLIP_IMAGE_SIZE};
use crate::runtime::{Runtime, SessionOptions};
use crate::text::clip::ClipTokenizer;
use crate::{Error, Result};

pub const CLIP_TEXT_IO: (&[&str], &[&str]) = (&["input_ids"], &["text_embeds"]);
pub const CLIP_VISION_IO: (&[&str], &[&str]) = (&["pixel_values"], &["image_embeds"]);

/// Files of the scorer inside a bundle.
#[derive(Debug, Clone)]
pub struct ScorerFiles<'a> {
    pub text_model: &'a Path,
    pub vision_model: &'a Path,
    /// CLIP BPE merges (`merges.txt` layout: a header line, then merges).
    pub merges: &'a Path,
    /// The aesthetic head: `.safetensors` or the reference `.pth` (state-dict names).
    pub aesthetic: &'a Path,
}

/// CLIP towers + aesthetic head. `Send + Sync`.
pub struct ClipScorer {
    text: Graph,
    vision: Graph,
    tokenizer: ClipTokenizer,
    aesthetic: AestheticHead,
    /// Images per vision-tower call.
    batch: usize,
}

impl std::fmt::Debug for ClipScorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClipScorer").field("vision", &self.vision.path()).finish_non_exhaustive()
    }
}

impl ClipScorer {
    pub fn load(rt: &Runtime, files: &ScorerFiles<'_>, opts: &SessionOptions) -> Result<ClipScorer> {
        let (text, _) = Graph::load(rt, files.text_model, opts, CLIP_TEXT_IO.0, CLIP_TEXT_IO.1)?;
        let (vision, _) = Graph::load(rt, files.vision_model, opts, CLIP_VISION_IO.0, CLIP_VISION_IO.1)?;
        text.expect_input_shape("input_ids", 2, &[])?;
        let s = CLIP_IMAGE_SIZE as i64;
        vision.expect_input_shape("pixel_values", 4, &[(1, 3), (2, s), (3, s)])?;
        let merges = crate::io::read_text(files.merges)?;
        let tokenizer = ClipTokenizer::from_merges_text(&merges).map_err(|e| Error::Tokenizer(format!("{}: {e}", files.merges.display())))?;
        let aesthetic = AestheticHead::from_file(files.aesthetic)?;
        Ok(ClipScorer { text, vision, tokenizer, aesthetic, batch: 4 })
    }

    /// The projected CLIP text embedding of `text` (open_clip tokens: 77, zero padded, truncated).
    pub fn text_embedding(&self, text: &str) -> Result<Vec<f32>> {
        let ids: Vec<i64> = self.tokenizer.tokenize_open_clip(text)?.into_iter().map(i64::from).collect();
        let n = ids.len();
        let out = self.text.run(&[("input_ids", Feed::Int { shape: vec![1, n], data: ids })], CLIP_TEXT_IO.1)?;
        let o = out.into_iter().next().ok_or_else(|| Error::Internal("CLIP text: no output".into()))?;
        if o.shape.len() != 2 || o.shape[0] != 1 {
            return Err(Error::ModelFormat(format!("{}: text_embeds has shape {:?}", self.text.path().display(), o.shape)));
        }
        Ok(o.data)
    }

    /// The projected CLIP image embedding of each image (CLIP preprocessing first).
    pub fn image_embeddings(&self, images: &[&Image], progress: Progress<'_>) -> Result<Vec<Vec<f32>>> {
        let s = CLIP_IMAGE_SIZE;
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(self.batch) {
            let mut pix = Vec::with_capacity(chunk.len() * 3 * s * s);
            for img in chunk {
                pix.extend(clip_preprocess(&img.rgb8, img.width, img.height)?);
            }
            let r = self
                .vision
                .run(&[("pixel_values", Feed::Float { shape: vec![chunk.len(), 3, s, s], data: pix })], CLIP_VISION_IO.1)?;
            let o = &r[0];
            if o.shape.len() != 2 || o.shape[0] != chunk.len() {
                return Err(Error::ModelFormat(format!("{}: image_embeds has shape {:?}", self.vision.path().display(), o.shape)));
            }
            let d = o.shape[1];
            out.extend(o.data.chunks(d).map(<[f32]>::to_vec));
            report(progress, Stage::Score, out.len(), images.len())?;
        }
        Ok(out)
    }

    /// The aesthetic score of an image embedding (L2-normalised first, f64).
    pub fn aesthetic(&self, image_embedding: &[f32]) -> Result<f64> {
        if image_embedding.len() != crate::reward::aesthetic::WIDTHS[0] {
            return Err(Error::ModelFormat(format!(
                "the aesthetic head takes {}-dim CLIP image embeddings; the scorer CLIP gives {}",
                crate::reward::aesthetic::WIDTHS[0],
                image_embedding.len()
            )));
        }
        self.aesthetic.score(image_embedding)
    }
}
