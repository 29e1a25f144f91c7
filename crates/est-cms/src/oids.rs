//! Object identifiers used by this crate (values checked against the cited RFCs).
use der::asn1::ObjectIdentifier as Oid;

/// id-data (RFC 5652 §4).
pub const ID_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
/// id-signedData (RFC 5652 §5.1).
pub const ID_SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
/// id-envelopedData (RFC 5652 §6.1).
pub const ID_ENVELOPED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.3");
/// id-ct-authData (RFC 5652 §9.1).
pub const ID_CT_AUTH_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.1.2");
/// id-ct-KP-aKeyPackage (RFC 5958 §3).
pub const ID_CT_KP_A_KEY_PACKAGE: Oid = Oid::new_unwrap("2.16.840.1.101.2.1.2.78.5");

/// id-contentType attribute (RFC 5652 §11.1).
pub const ID_CONTENT_TYPE: Oid = Oid::new_unwrap("1.2.840.113549.1.9.3");
/// id-messageDigest attribute (RFC 5652 §11.2).
pub const ID_MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
/// id-signingTime attribute (RFC 5652 §11.3).
pub const ID_SIGNING_TIME: Oid = Oid::new_unwrap("1.2.840.113549.1.9.5");
/// smimeCapabilities attribute (RFC 5751 §2.5.2).
pub const ID_SMIME_CAPABILITIES: Oid = Oid::new_unwrap("1.2.840.113549.1.9.15");

/// id-sha1 (RFC 3370 §2.1), used only as the OAEP/PBKDF2 default.
pub const ID_SHA1: Oid = Oid::new_unwrap("1.3.14.3.2.26");
/// id-sha256 (RFC 5754 §2.2).
pub const ID_SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
/// id-sha384 (RFC 5754 §2.3).
pub const ID_SHA384: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.2");
/// id-sha512 (RFC 5754 §2.4).
pub const ID_SHA512: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.3");

/// rsaEncryption (RFC 3370 §3.2, §4.2.1).
pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
/// id-RSAES-OAEP (RFC 3560 §2.2).
pub const ID_RSAES_OAEP: Oid = Oid::new_unwrap("1.2.840.113549.1.1.7");
/// id-mgf1 (RFC 4055 §2.2).
pub const ID_MGF1: Oid = Oid::new_unwrap("1.2.840.113549.1.1.8");
/// id-pSpecified (RFC 4055 §4.1).
pub const ID_P_SPECIFIED: Oid = Oid::new_unwrap("1.2.840.113549.1.1.9");
/// id-RSASSA-PSS (RFC 4056 §2).
pub const ID_RSASSA_PSS: Oid = Oid::new_unwrap("1.2.840.113549.1.1.10");
/// sha1WithRSAEncryption (RFC 3370 §3.2), verified only (CMC-29).
pub const SHA1_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.5");
/// ecdsa-with-SHA1 (RFC 3279 §2.2.3), verified only.
pub const ECDSA_WITH_SHA1: Oid = Oid::new_unwrap("1.2.840.10045.4.1");
/// sha256WithRSAEncryption (RFC 5754 §3.2).
pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
/// sha384WithRSAEncryption (RFC 5754 §3.2).
pub const SHA384_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.12");
/// sha512WithRSAEncryption (RFC 5754 §3.2).
pub const SHA512_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.13");
/// id-ecPublicKey (RFC 5480 §2.1.1).
pub const ID_EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
/// secp256r1 (RFC 5480 §2.1.1.1).
pub const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
/// secp384r1 (RFC 5480 §2.1.1.1).
pub const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");
/// ecdsa-with-SHA256 (RFC 5754 §3.3).
pub const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
/// ecdsa-with-SHA384 (RFC 5754 §3.3).
pub const ECDSA_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.10045.4.3.3");
/// ecdsa-with-SHA512 (RFC 5754 §3.3).
pub const ECDSA_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.10045.4.3.4");
/// id-Ed25519 (RFC 8410 §3, RFC 8419 §2.3).
pub const ID_ED25519: Oid = Oid::new_unwrap("1.3.101.112");

/// id-aes128-CBC (RFC 3565 §4.1).
pub const AES128_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.2");
/// id-aes192-CBC (RFC 3565 §4.1).
pub const AES192_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.22");
/// id-aes256-CBC (RFC 3565 §4.1).
pub const AES256_CBC: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.42");
/// id-aes128-wrap (RFC 3565 §4.3).
pub const AES128_WRAP: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.5");
/// id-aes192-wrap (RFC 3565 §4.3).
pub const AES192_WRAP: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.25");
/// id-aes256-wrap (RFC 3565 §4.3).
pub const AES256_WRAP: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.1.45");

/// dhSinglePass-stdDH-sha1kdf-scheme (RFC 5753 §7.1.4); decryption only.
pub const DH_SINGLE_PASS_STD_DH_SHA1KDF: Oid = Oid::new_unwrap("1.3.133.16.840.63.0.2");
/// dhSinglePass-stdDH-sha256kdf-scheme (RFC 5753 §7.1.4).
pub const DH_SINGLE_PASS_STD_DH_SHA256KDF: Oid = Oid::new_unwrap("1.3.132.1.11.1");
/// dhSinglePass-stdDH-sha384kdf-scheme (RFC 5753 §7.1.4).
pub const DH_SINGLE_PASS_STD_DH_SHA384KDF: Oid = Oid::new_unwrap("1.3.132.1.11.2");
/// dhSinglePass-stdDH-sha512kdf-scheme (RFC 5753 §7.1.4).
pub const DH_SINGLE_PASS_STD_DH_SHA512KDF: Oid = Oid::new_unwrap("1.3.132.1.11.3");

/// id-PBKDF2 (RFC 8018 §A.2, RFC 3211 §2.1).
pub const ID_PBKDF2: Oid = Oid::new_unwrap("1.2.840.113549.1.5.12");
/// id-hmacWithSHA1 (RFC 8018 §B.1.1), the PBKDF2 default PRF.
pub const HMAC_WITH_SHA1: Oid = Oid::new_unwrap("1.2.840.113549.2.7");
/// id-hmacWithSHA256 (RFC 8018 §B.1.2, RFC 4231 §3.1).
pub const HMAC_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.113549.2.9");
/// id-hmacWithSHA384 (RFC 8018 §B.1.2).
pub const HMAC_WITH_SHA384: Oid = Oid::new_unwrap("1.2.840.113549.2.10");
/// id-hmacWithSHA512 (RFC 8018 §B.1.2).
pub const HMAC_WITH_SHA512: Oid = Oid::new_unwrap("1.2.840.113549.2.11");
/// id-alg-PWRI-KEK (RFC 3211 §2.3).
pub const ID_ALG_PWRI_KEK: Oid = Oid::new_unwrap("1.2.840.113549.1.9.16.3.9");
