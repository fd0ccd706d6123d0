//! Fitting a rewrite into the text encoder's window: Stable Diffusion's CLIP text encoder reads 77
//! tokens, 75 of them the prompt's (start and end take two), and silently drops the rest. The
//! tokens are counted with the embedded CLIP tokenizer, with transformers' cleaning (what
//! diffusers' `CLIPTokenizer` does), on the prompt's plain text (`syntax::parse`: weights and
//! extra-network tags are not tokens the encoder sees). A rewrite over the budget is cut after its
//! last whole comma-separated phrase that fits; the user's own text is never cut
//! (docs/prompt-syntax.md, "Token budget").

use crate::text::clip::{CleanMode, ClipTokenizer};
use crate::text::syntax;
use crate::Result;

/// A rewrite fitted to the budget.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub text: String,
    /// CLIP tokens of `text` (start and end tokens not counted).
    pub clip_tokens: usize,
    /// The user's own text alone is over the budget: `text` is the user's text, unchanged.
    pub over_budget: bool,
}

/// CLIP tokens of `text`'s plain text (start and end tokens not counted).
pub fn clip_tokens(clip: &ClipTokenizer, text: &str) -> Result<usize> {
    Ok(clip.encode(&syntax::parse(text).plain, CleanMode::Transformers)?.len())
}

/// Fit `candidate` (a rewrite of `user_prompt`) into `budget` CLIP tokens; `budget` 0 only counts.
/// When the user's prompt alone is over the budget, it is returned unchanged with `over_budget`
/// set. Otherwise the candidate is cut after its last whole comma-separated phrase that fits,
/// keeping whole the user's prompt when the candidate starts with it, else its first phrase (and
/// when not even that fits, the user's prompt is returned).
pub fn fit(clip: &ClipTokenizer, user_prompt: &str, candidate: &str, budget: usize) -> Result<Fitted> {
    let n = clip_tokens(clip, candidate)?;
    if budget == 0 || n <= budget {
        return Ok(Fitted { text: candidate.to_string(), clip_tokens: n, over_budget: false });
    }
    let user = user_prompt.trim();
    // The user's own text is never cut: alone over the budget, it comes back unchanged, flagged.
    let user_tokens = clip_tokens(clip, user)?;
    if user_tokens > budget {
        return Ok(Fitted { text: user.to_string(), clip_tokens: user_tokens, over_budget: true });
    }
    let protected = if !user.is_empty() && candidate.starts_with(user) {
        user.len()
    } else {
        candidate.find(',').unwrap_or(candidate.len())
    };
    let kept = candidate[..protected].trim_end();
    let kept_tokens = clip_tokens(clip, kept)?;
    if kept_tokens > budget {
        // Not even the rewrite's first phrase fits: the user's prompt (which does) is the answer.
        return Ok(Fitted { text: user.to_string(), clip_tokens: user_tokens, over_budget: false });
    }
    // The longest prefix ending at a comma after the protected part that fits.
    let mut best = (kept.to_string(), kept_tokens);
    for (i, _) in candidate[protected..].match_indices(',') {
        let prefix = candidate[..protected + i].trim_end();
        let t = clip_tokens(clip, prefix)?;
        if t > budget {
            break;
        }
        best = (prefix.to_string(), t);
    }
    Ok(Fitted { text: best.0, clip_tokens: best.1, over_budget: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tok() -> ClipTokenizer {
        ClipTokenizer::embedded().unwrap()
    }

    #[test]
    fn counts_plain_clip_tokens() {
        let t = tok();
        assert_eq!(clip_tokens(&t, "").unwrap(), 0);
        assert_eq!(clip_tokens(&t, "a red fox").unwrap(), 3);
        // Weights and extra-network tags are not tokens the encoder sees.
        assert_eq!(clip_tokens(&t, "(a red fox:1.3) <lora:x:0.5>").unwrap(), 3);
    }

    #[test]
    fn cuts_at_the_last_whole_phrase_and_never_the_users_text() {
        let t = tok();
        let fit = |u: &str, c: &str, b: usize| fit(&t, u, c, b);
        let clip_tokens = |s: &str| clip_tokens(&t, s);
        let user = "a red fox in the snow";
        let mods: Vec<String> = (0..40).map(|i| format!("detail number {i}")).collect();
        let cand = format!("{user}, {}", mods.join(", "));
        let f = fit(user, &cand, 30).unwrap();
        assert!(f.clip_tokens <= 30 && !f.over_budget, "{f:?}");
        assert!(f.text.starts_with(user) && cand.starts_with(&f.text), "{f:?}");
        assert!(!f.text.ends_with(','), "{f:?}");
        // Whole phrases only: the next phrase would not have fitted.
        let next = &cand[f.text.len()..];
        let one_more = format!("{}{}", f.text, &next[..next[1..].find(',').map_or(next.len(), |k| k + 1)]);
        assert!(clip_tokens(&one_more).unwrap() > 30, "{one_more:?}");
        // Under the budget, or budget 0: unchanged.
        assert_eq!(fit(user, &cand, 0).unwrap().text, cand);
        assert_eq!(fit(user, "a red fox in the snow, 8k", 75).unwrap().text, "a red fox in the snow, 8k");
        // The user's text alone over the budget: returned unchanged, flagged.
        let long_user = mods.join(" and ");
        let f = fit(&long_user, &format!("{long_user}, 8k"), 20).unwrap();
        assert_eq!(f.text, long_user);
        assert!(f.over_budget && f.clip_tokens > 20);
        // A rewrite that does not start with the user's text keeps at least its first phrase.
        let f = fit("a fox", &format!("a fox running in deep snow, {}", mods.join(", ")), 8).unwrap();
        assert_eq!(f.text, "a fox running in deep snow");
        // ... and when not even that fits, the user's prompt is the answer.
        let f = fit("a fox", &format!("a fox running in deep snow, {}", mods.join(", ")), 4).unwrap();
        assert_eq!((f.text.as_str(), f.over_budget), ("a fox", false));
    }
}
