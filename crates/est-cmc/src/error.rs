//! A CMC failure: the status to report, for which body parts, and a human-readable reason
//! (carried as statusString, CMC-36).
use crate::types::{BodyPartId, BodyPartReference, CmcFailInfo, CmcStatus};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `failed` with a failInfo, or `noSupport` (CMC-11).
    pub status: CmcStatus,
    pub fail_info: CmcFailInfo,
    pub body_list: Vec<BodyPartReference>,
    pub reason: String,
}

impl Failure {
    /// A failure of the whole message: bodyList = [0] (CMC-16, CMC-19).
    pub fn message(fail_info: CmcFailInfo, reason: impl Into<String>) -> Self {
        Self::body_part(fail_info, 0, reason)
    }

    /// A failure of one body part.
    pub fn body_part(fail_info: CmcFailInfo, id: BodyPartId, reason: impl Into<String>) -> Self {
        Self {
            status: CmcStatus::FAILED,
            fail_info,
            body_list: vec![BodyPartReference::Id(id)],
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.status.name(),
            self.fail_info.name(),
            self.reason
        )
    }
}

impl std::error::Error for Failure {}
