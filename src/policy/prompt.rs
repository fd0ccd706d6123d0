//! The Promptist text format (docs/method.md §1): the model input is `source.strip() + " Rephrase:"`
//! with no BOS token; the output is the generated tokens only (sliced at the input length, never a
//! string replace of the input), decoded and stripped.

use crate::{Error, Result};

/// The suffix appended to the user's prompt.
pub const REPHRASE_SUFFIX: &str = " Rephrase:";

/// Build the model input text; an empty (after trimming) prompt is an error.
pub fn format_input(source: &str) -> Result<String> {
    let s = source.trim();
    if s.is_empty() {
        return Err(Error::EmptyPrompt);
    }
    Ok(format!("{s}{REPHRASE_SUFFIX}"))
}

/// Turn the decoded generated tokens into the returned prompt.
pub fn finish_output(decoded: &str) -> String {
    decoded.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_strips() {
        assert_eq!(format_input("  a cat on a mat \n").unwrap(), "a cat on a mat Rephrase:");
        assert!(matches!(format_input(" \t "), Err(Error::EmptyPrompt)));
        assert_eq!(finish_output(" a cat, trending on artstation "), "a cat, trending on artstation");
    }
}
