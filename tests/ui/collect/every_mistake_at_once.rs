use jobs::prelude::*;

#[derive(Serialize, Deserialize)]
struct SendEmail {
    recipient: String,
}

// The one file with several mistakes: all of them are reported together.
#[job_handler("Email", retry = 3, timeout = "soon")]
fn send_email(_email: &SendEmail) {}

fn main() {}
