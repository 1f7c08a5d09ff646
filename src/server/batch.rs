//! IRCv3 batches the server opens: `BATCH +ref type params…`, lines
//! tagged `batch=ref`, `BATCH -ref`.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::proto::tags;
use crate::proto::LineBuilder;

static NEXT_REFERENCE: AtomicU64 = AtomicU64::new(1);

pub struct Batch {
    reference: String,
    start: Bytes,
    end: Bytes,
}

impl Batch {
    /// A batch of `kind` with `params`, under a reference no other batch
    /// of this server has.
    pub fn start(server_name: &str, kind: &str, params: &[&str]) -> Batch {
        let reference = NEXT_REFERENCE.fetch_add(1, Ordering::Relaxed).to_string();
        let start = match params.split_last() {
            Some((last, middle)) => LineBuilder::new(Some(server_name), "BATCH")
                .param(&format!("+{reference}"))
                .param(kind)
                .params(middle.iter().copied())
                .last(last),
            None => LineBuilder::new(Some(server_name), "BATCH")
                .param(&format!("+{reference}"))
                .last(kind),
        };
        let end = LineBuilder::new(Some(server_name), "BATCH").last(&format!("-{reference}"));
        Batch {
            reference,
            start,
            end,
        }
    }

    pub fn start_line(&self) -> Bytes {
        self.start.clone()
    }

    /// `line` (already as its recipient takes it) inside this batch.
    pub fn wrap(&self, line: &Bytes) -> Bytes {
        tags::prepend(line, &[("batch", &self.reference)])
    }

    pub fn end_line(&self) -> Bytes {
        self.end.clone()
    }
}
