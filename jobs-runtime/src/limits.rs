//! Size limits on what an attempt hands to the backend: its result and its
//! error message are checked where they enter, so a value no backend could
//! store fails its own job with a clear message instead of a batch of others.
//! (Results are measured with `jobs_core::payload::json_size`.)

/// `message`, cut to at most `max` bytes (on a character boundary) with a
/// note saying how long it was.
pub(crate) fn truncate_message(message: &str, max: usize) -> String {
    if message.len() <= max {
        return message.to_owned();
    }
    let mut end = max;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… (truncated: the message was {} bytes, the limit is {max})",
        &message[..end],
        message.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        assert_eq!(truncate_message("short", 10), "short");
        let cut = truncate_message(&"é".repeat(10), 5);
        assert!(cut.starts_with("éé…"), "{cut}");
        assert!(cut.contains("20 bytes"), "{cut}");
    }
}
