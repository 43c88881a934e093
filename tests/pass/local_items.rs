//! A handler declared inside a function body, and one in a module that is
//! re-exported: the expansion only uses names visible where it is written.
use jobs::prelude::*;

mod mail {
    use jobs::prelude::*;

    #[derive(Serialize, Deserialize)]
    pub struct SendEmail {
        pub recipient: String,
    }

    #[job_handler("email.send")]
    pub(crate) async fn send_email_handler(_email: SendEmail) {}
}

fn main() {
    #[derive(Serialize, Deserialize)]
    struct Local;

    #[job_handler("local.job")]
    async fn local(_: Local) {}

    let _ = LocalHandler;
    let _ = mail::SendEmailHandler;
    let _ = mail::send_email_handler;
}
