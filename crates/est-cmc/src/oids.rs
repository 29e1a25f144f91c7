//! Object identifiers of CMC (REQUIREMENTS §2.13; RFC 5272 §3.2, Table 1; RFC 6402).
//!
//! §2.14 item 2: the RFC 6402 2008 module swaps identityProofV2 and popLinkWitnessV2; the
//! values here follow RFC 5272 Table 1 and the 1988 module (popLinkWitnessV2 = .33,
//! identityProofV2 = .34).
use const_oid::ObjectIdentifier as O;

/// id-cct-PKIData (CMC-1).
pub const CT_PKI_DATA: O = O::new_unwrap("1.3.6.1.5.5.7.12.2");
/// id-cct-PKIResponse (CMC-2).
pub const CT_PKI_RESPONSE: O = O::new_unwrap("1.3.6.1.5.5.7.12.3");

pub const STATUS_INFO: O = O::new_unwrap("1.3.6.1.5.5.7.7.1");
pub const IDENTIFICATION: O = O::new_unwrap("1.3.6.1.5.5.7.7.2");
pub const IDENTITY_PROOF: O = O::new_unwrap("1.3.6.1.5.5.7.7.3");
pub const DATA_RETURN: O = O::new_unwrap("1.3.6.1.5.5.7.7.4");
pub const TRANSACTION_ID: O = O::new_unwrap("1.3.6.1.5.5.7.7.5");
pub const SENDER_NONCE: O = O::new_unwrap("1.3.6.1.5.5.7.7.6");
pub const RECIPIENT_NONCE: O = O::new_unwrap("1.3.6.1.5.5.7.7.7");
pub const ADD_EXTENSIONS: O = O::new_unwrap("1.3.6.1.5.5.7.7.8");
pub const ENCRYPTED_POP: O = O::new_unwrap("1.3.6.1.5.5.7.7.9");
pub const DECRYPTED_POP: O = O::new_unwrap("1.3.6.1.5.5.7.7.10");
pub const LRA_POP_WITNESS: O = O::new_unwrap("1.3.6.1.5.5.7.7.11");
pub const GET_CERT: O = O::new_unwrap("1.3.6.1.5.5.7.7.15");
pub const GET_CRL: O = O::new_unwrap("1.3.6.1.5.5.7.7.16");
pub const REVOKE_REQUEST: O = O::new_unwrap("1.3.6.1.5.5.7.7.17");
pub const REG_INFO: O = O::new_unwrap("1.3.6.1.5.5.7.7.18");
pub const RESPONSE_INFO: O = O::new_unwrap("1.3.6.1.5.5.7.7.19");
pub const QUERY_PENDING: O = O::new_unwrap("1.3.6.1.5.5.7.7.21");
pub const POP_LINK_RANDOM: O = O::new_unwrap("1.3.6.1.5.5.7.7.22");
pub const POP_LINK_WITNESS: O = O::new_unwrap("1.3.6.1.5.5.7.7.23");
pub const CONFIRM_CERT_ACCEPTANCE: O = O::new_unwrap("1.3.6.1.5.5.7.7.24");
pub const STATUS_INFO_V2: O = O::new_unwrap("1.3.6.1.5.5.7.7.25");
pub const TRUSTED_ANCHORS: O = O::new_unwrap("1.3.6.1.5.5.7.7.26");
pub const AUTH_DATA: O = O::new_unwrap("1.3.6.1.5.5.7.7.27");
pub const BATCH_REQUESTS: O = O::new_unwrap("1.3.6.1.5.5.7.7.28");
pub const BATCH_RESPONSES: O = O::new_unwrap("1.3.6.1.5.5.7.7.29");
pub const PUBLISH_CERT: O = O::new_unwrap("1.3.6.1.5.5.7.7.30");
pub const MOD_CERT_TEMPLATE: O = O::new_unwrap("1.3.6.1.5.5.7.7.31");
pub const CONTROL_PROCESSED: O = O::new_unwrap("1.3.6.1.5.5.7.7.32");
pub const POP_LINK_WITNESS_V2: O = O::new_unwrap("1.3.6.1.5.5.7.7.33");
pub const IDENTITY_PROOF_V2: O = O::new_unwrap("1.3.6.1.5.5.7.7.34");
pub const RA_IDENTITY_WITNESS: O = O::new_unwrap("1.3.6.1.5.5.7.7.35");
pub const CHANGE_SUBJECT_NAME: O = O::new_unwrap("1.3.6.1.5.5.7.7.36");
pub const RESPONSE_BODY: O = O::new_unwrap("1.3.6.1.5.5.7.7.37");

/// id-kp-cmcCA / cmcRA / cmcArchive (§2.14 item 1: cmcArchive is .29).
pub const KP_CMC_CA: O = O::new_unwrap("1.3.6.1.5.5.7.3.27");
pub const KP_CMC_RA: O = O::new_unwrap("1.3.6.1.5.5.7.3.28");
pub const KP_CMC_ARCHIVE: O = O::new_unwrap("1.3.6.1.5.5.7.3.29");
/// id-ad-cmc (CMC-76).
pub const AD_CMC: O = O::new_unwrap("1.3.6.1.5.5.7.48.12");
/// id-aa-cmc-unsignedData (CMC-25).
pub const AA_CMC_UNSIGNED_DATA: O = O::new_unwrap("1.2.840.113549.1.9.16.2.34");

/// CRMF registration controls that CMC forbids (CMC-14).
pub const REG_CTRL_REG_TOKEN: O = O::new_unwrap("1.3.6.1.5.5.7.5.1.1");
pub const REG_CTRL_AUTHENTICATOR: O = O::new_unwrap("1.3.6.1.5.5.7.5.1.2");

/// PKCS#9 extensionRequest and challengePassword.
pub const EXTENSION_REQUEST: O = O::new_unwrap("1.2.840.113549.1.9.14");
pub const CHALLENGE_PASSWORD: O = O::new_unwrap("1.2.840.113549.1.9.7");

/// Digest and MAC algorithms of identity proof and POP linking (CMC-45).
pub const SHA1: O = O::new_unwrap("1.3.14.3.2.26");
pub const SHA256: O = O::new_unwrap("2.16.840.1.101.3.4.2.1");
pub const SHA384: O = O::new_unwrap("2.16.840.1.101.3.4.2.2");
pub const SHA512: O = O::new_unwrap("2.16.840.1.101.3.4.2.3");
/// hmac-sha1 as RFC 5272 names it (1.3.6.1.5.5.8.1.2) and the PKCS#5 form.
pub const HMAC_SHA1: O = O::new_unwrap("1.3.6.1.5.5.8.1.2");
pub const HMAC_WITH_SHA1: O = O::new_unwrap("1.2.840.113549.2.7");
pub const HMAC_WITH_SHA256: O = O::new_unwrap("1.2.840.113549.2.9");
pub const HMAC_WITH_SHA384: O = O::new_unwrap("1.2.840.113549.2.10");
pub const HMAC_WITH_SHA512: O = O::new_unwrap("1.2.840.113549.2.11");

/// A short name for a control OID, for status strings and logs.
pub fn control_name(oid: &O) -> Option<&'static str> {
    let table: &[(O, &str)] = &[
        (STATUS_INFO, "statusInfo"),
        (IDENTIFICATION, "identification"),
        (IDENTITY_PROOF, "identityProof"),
        (DATA_RETURN, "dataReturn"),
        (TRANSACTION_ID, "transactionId"),
        (SENDER_NONCE, "senderNonce"),
        (RECIPIENT_NONCE, "recipientNonce"),
        (ADD_EXTENSIONS, "addExtensions"),
        (ENCRYPTED_POP, "encryptedPOP"),
        (DECRYPTED_POP, "decryptedPOP"),
        (LRA_POP_WITNESS, "lraPOPWitness"),
        (GET_CERT, "getCert"),
        (GET_CRL, "getCRL"),
        (REVOKE_REQUEST, "revokeRequest"),
        (REG_INFO, "regInfo"),
        (RESPONSE_INFO, "responseInfo"),
        (QUERY_PENDING, "queryPending"),
        (POP_LINK_RANDOM, "popLinkRandom"),
        (POP_LINK_WITNESS, "popLinkWitness"),
        (CONFIRM_CERT_ACCEPTANCE, "confirmCertAcceptance"),
        (STATUS_INFO_V2, "statusInfoV2"),
        (TRUSTED_ANCHORS, "trustedAnchors"),
        (AUTH_DATA, "authData"),
        (BATCH_REQUESTS, "batchRequests"),
        (BATCH_RESPONSES, "batchResponses"),
        (PUBLISH_CERT, "publishCert"),
        (MOD_CERT_TEMPLATE, "modCertTemplate"),
        (CONTROL_PROCESSED, "controlProcessed"),
        (POP_LINK_WITNESS_V2, "popLinkWitnessV2"),
        (IDENTITY_PROOF_V2, "identityProofV2"),
        (RA_IDENTITY_WITNESS, "raIdentityWitness"),
        (CHANGE_SUBJECT_NAME, "changeSubjectName"),
        (RESPONSE_BODY, "responseBody"),
    ];
    table.iter().find(|(o, _)| o == oid).map(|(_, n)| *n)
}
