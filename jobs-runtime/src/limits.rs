//! Size limits on what an attempt hands to the backend: its result and its
//! error message are checked where they enter, so a value no backend could
//! store fails its own job with a clear message instead of a batch of others.

use serde_json::Value;

/// About how many bytes `v` takes as JSON (escapes aside), without
/// serializing it.
pub(crate) fn json_size(v: &Value) -> usize {
    match v {
        Value::Null => 4,
        Value::Bool(_) => 5,
        Value::Number(n) => n.to_string().len(),
        Value::String(s) => s.len() + 2,
        Value::Array(items) => 2 + items.iter().map(|i| json_size(i) + 1).sum::<usize>(),
        Value::Object(map) => {
            2 + map
                .iter()
                .map(|(k, v)| k.len() + 4 + json_size(v))
                .sum::<usize>()
        }
    }
}

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
    use serde_json::json;

    #[test]
    fn sizes_are_close_to_the_serialized_length() {
        for v in [
            json!(null),
            json!({"a": [1, 2, 3], "b": {"c": "dé"}}),
            json!("x".repeat(1000)),
        ] {
            let real = serde_json::to_vec(&v).unwrap().len();
            let est = json_size(&v);
            assert!(est + 8 >= real && est <= real + 8, "{v}: {est} vs {real}");
        }
    }

    #[test]
    fn long_messages_are_cut_on_a_character_boundary() {
        assert_eq!(truncate_message("short", 10), "short");
        let cut = truncate_message(&"é".repeat(10), 5);
        assert!(cut.starts_with("éé…"), "{cut}");
        assert!(cut.contains("20 bytes"), "{cut}");
    }
}
