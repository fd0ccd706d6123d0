//! The reward formula of docs/method.md §3 (from the Promptist reference code, microsoft/LMOps
//! `promptist/diff_prompter/ppo_prompter.py`):
//! `R(x, y) = mean_i [ A(img_i(y)) - mean_j A(img_j(x)) + min(20 * max(s_i, 0) - 5.6, 0) ]`,
//! `s_i = cos(CLIP_img(img_i(y)), CLIP_text(x))` (no logit scale). All in f64.

use crate::{Error, Result};

/// Slope and offset of the relevance penalty: 0 once s >= 0.28, -5.6 at s <= 0.
pub const RELEVANCE_SCALE: f64 = 20.0;
pub const RELEVANCE_OFFSET: f64 = 5.6;

/// The reward of one candidate y for the source prompt x, with its parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Reward {
    /// mean_i [aesthetic_y[i] - mean(aesthetic_x) + relevance_i].
    pub reward: f64,
    /// mean_i relevance_term(similarity[i]).
    pub relevance: f64,
    /// s_i per image of y: cosine(CLIP image embedding of y's image i, CLIP text embedding of x).
    pub similarity: Vec<f64>,
    /// Aesthetic score of each image of y.
    pub aesthetic_y: Vec<f64>,
    /// Aesthetic score of each image of x.
    pub aesthetic_x: Vec<f64>,
    /// mean(aesthetic_y) - mean(aesthetic_x).
    pub aesthetic_gain: f64,
}

impl Reward {
    /// mean(aesthetic_y): the candidate's mean aesthetic score (NaN without images).
    pub fn mean_aesthetic_y(&self) -> f64 {
        mean_or_nan(&self.aesthetic_y)
    }
    /// mean(aesthetic_x): the user prompt's mean aesthetic score (NaN without images).
    pub fn mean_aesthetic_x(&self) -> f64 {
        mean_or_nan(&self.aesthetic_x)
    }
}

fn mean_or_nan(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// `min(20 * max(s, 0) - 5.6, 0)`.
pub fn relevance_term(similarity: f64) -> f64 {
    (RELEVANCE_SCALE * similarity.max(0.0) - RELEVANCE_OFFSET).min(0.0)
}

/// Cosine similarity of two embeddings (f64 accumulation). Errors on length mismatch or a zero vector.
pub fn cosine_similarity(a: &[f32], b: &[f32]) -> Result<f64> {
    if a.len() != b.len() || a.is_empty() {
        return Err(Error::InvalidOptions(format!(
            "cosine similarity of embeddings of lengths {} and {}",
            a.len(),
            b.len()
        )));
    }
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x as f64, y as f64);
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return Err(Error::InvalidOptions(
            "cosine similarity of a zero embedding".into(),
        ));
    }
    Ok(ab / (aa.sqrt() * bb.sqrt()))
}

/// The Promptist reward from per-image aesthetic scores of y's and x's images and the similarities
/// s_i of y's images to x's text. `aesthetic_y` and `similarity` are per image of y (same length);
/// `aesthetic_x` per image of x (any non-zero length).
pub fn promptist_reward(
    aesthetic_y: &[f64],
    aesthetic_x: &[f64],
    similarity: &[f64],
) -> Result<Reward> {
    if aesthetic_y.is_empty() || aesthetic_x.is_empty() {
        return Err(Error::InvalidOptions(
            "the reward needs at least one image of x and of y".into(),
        ));
    }
    if aesthetic_y.len() != similarity.len() {
        return Err(Error::InvalidOptions(format!(
            "{} aesthetic scores of y but {} similarities",
            aesthetic_y.len(),
            similarity.len()
        )));
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let base = mean(aesthetic_x);
    let n = aesthetic_y.len() as f64;
    let per_image: Vec<f64> = aesthetic_y
        .iter()
        .zip(similarity)
        .map(|(&a, &s)| a - base + relevance_term(s))
        .collect();
    Ok(Reward {
        reward: per_image.iter().sum::<f64>() / n,
        relevance: similarity.iter().map(|&s| relevance_term(s)).sum::<f64>() / n,
        similarity: similarity.to_vec(),
        aesthetic_y: aesthetic_y.to_vec(),
        aesthetic_x: aesthetic_x.to_vec(),
        aesthetic_gain: mean(aesthetic_y) - base,
    })
}

/// The reward from CLIP embeddings: `text_x` is the CLIP text embedding of x; `images_y` /
/// `images_x` the CLIP image embeddings of y's / x's images; `head` scores L2-normalised image
/// embeddings (the aesthetic predictor, folded).
pub fn reward_from_embeddings(
    head: &crate::reward::aesthetic::FoldedHead,
    text_x: &[f32],
    images_y: &[Vec<f32>],
    images_x: &[Vec<f32>],
) -> Result<Reward> {
    let aesthetic_y = images_y
        .iter()
        .map(|e| head.score(e))
        .collect::<Result<Vec<_>>>()?;
    let aesthetic_x = images_x
        .iter()
        .map(|e| head.score(e))
        .collect::<Result<Vec<_>>>()?;
    let similarity = images_y
        .iter()
        .map(|e| cosine_similarity(e, text_x))
        .collect::<Result<Vec<_>>>()?;
    promptist_reward(&aesthetic_y, &aesthetic_x, &similarity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_embeddings_by_hand() {
        use crate::reward::aesthetic::FoldedHead;
        // A(e) = e1/|e| + 2 e2/|e|; x's images both [1, 0] -> mean A(x) = 1.
        let head = FoldedHead {
            w: vec![1.0, 2.0],
            b: 0.0,
        };
        let text_x = [3.0f32, 0.0];
        let y = vec![vec![2.0f32, 0.0], vec![0.0, 5.0]];
        let x = vec![vec![1.0f32, 0.0], vec![4.0, 0.0]];
        let r = reward_from_embeddings(&head, &text_x, &y, &x).unwrap();
        // y0: s = 1, A = 1 -> 1 - 1 + 0 = 0; y1: s = 0, A = 2 -> 2 - 1 - 5.6 = -4.6; mean -2.3
        assert!((r.reward + 2.3).abs() < 1e-12, "{}", r.reward);
        assert_eq!(r.similarity, vec![1.0, 0.0]);
        assert_eq!(r.aesthetic_y, vec![1.0, 2.0]);
        assert_eq!(r.aesthetic_x, vec![1.0, 1.0]);
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn relevance_clamp() {
        assert!(close(relevance_term(0.28), 0.0));
        assert_eq!(relevance_term(0.3), 0.0);
        assert_eq!(relevance_term(0.9), 0.0);
        assert!(close(relevance_term(0.2), -1.6));
        assert!(close(relevance_term(0.1), -3.6));
        assert!(close(relevance_term(0.0), -5.6));
        // negative similarity is clamped to 0 first: the floor is -5.6, not lower.
        assert!(close(relevance_term(-0.5), -5.6));
        assert!(close(relevance_term(-1.0), -5.6));
    }

    #[test]
    fn aesthetic_difference_sign() {
        // y's images prettier than x's: positive; uglier: negative (relevance saturated).
        let up = promptist_reward(&[6.5, 6.5], &[5.0, 6.0], &[0.3, 0.3]).unwrap();
        assert!(close(up.reward, 1.0));
        assert!(close(up.aesthetic_gain, 1.0));
        assert_eq!(up.relevance, 0.0);
        let down = promptist_reward(&[5.0, 5.0], &[5.0, 6.0], &[0.3, 0.3]).unwrap();
        assert!(close(down.reward, -0.5));
    }

    #[test]
    fn averaging_over_images() {
        // image 1: 7 - 5.5 + 0 = 1.5; image 2: 5 - 5.5 + (20*0.2 - 5.6 = -1.6) = -2.1
        // image 3: 6 - 5.5 + (s = -0.1 -> -5.6) = -5.1; mean = -5.7 / 3 = -1.9
        let r = promptist_reward(&[7.0, 5.0, 6.0], &[5.0, 6.0], &[0.35, 0.2, -0.1]).unwrap();
        assert!(close(r.reward, -1.9), "{}", r.reward);
        assert!(close(r.relevance, (0.0 - 1.6 - 5.6) / 3.0));
        assert!(close(r.aesthetic_gain, 0.5));
        assert_eq!(r.similarity, vec![0.35, 0.2, -0.1]);
        assert_eq!(r.aesthetic_x, vec![5.0, 6.0]);
        // the reward is the aesthetic gain plus the mean relevance term
        assert!(close(r.reward, r.aesthetic_gain + r.relevance));
    }

    #[test]
    fn bad_inputs() {
        assert!(promptist_reward(&[], &[1.0], &[]).is_err());
        assert!(promptist_reward(&[1.0], &[], &[0.1]).is_err());
        assert!(promptist_reward(&[1.0, 2.0], &[1.0], &[0.1]).is_err());
        assert!(cosine_similarity(&[1.0], &[1.0, 2.0]).is_err());
        assert!(cosine_similarity(&[0.0, 0.0], &[1.0, 2.0]).is_err());
        assert!(close(
            cosine_similarity(&[1.0, 0.0], &[0.0, 2.0]).unwrap(),
            0.0
        ));
        assert!(close(
            cosine_similarity(&[1.0, 1.0], &[2.0, 2.0]).unwrap(),
            1.0
        ));
    }
}
