// Bouncy Castle CMC Full PKI client interop against Estuary's /fullcmc (RFC 5272/6402 over RFC 7030 §4.3).
//
// Every request is built and every response parsed with Bouncy Castle's own CMC, CMS and CRMF classes
// (org.bouncycastle.asn1.cmc.*, org.bouncycastle.cms.*, org.bouncycastle.cert.crmf.*): no DER is
// written by hand. Built against Debian's Bouncy Castle 1.72.
//
// Usage:
//   java -cp bcprov.jar:bcpkix.jar:bcutil.jar:bctls.jar:. CmcInterop gen OUTDIR
//       Offline: writes Full PKI Requests (DER ContentInfo) with their request keys (.key.pem, PKCS#8)
//       and a description (.txt) as test vectors. CMC_SECRET (env) is the identity-proof shared secret
//       (default "bc-shared-secret-0123456789").
//   java -cp ... CmcInterop HOST:PORT ROOT.pem USER PASSWORD [IDENT SECRET]
//       Live: posts fresh requests to https://HOST:PORT/.well-known/est[/$EST_LABEL]/fullcmc with HTTP
//       Basic, trusting only ROOT.pem, and checks every response. With IDENT and SECRET it also enrolls
//       with Identification + Identity Proof V2 under that identity and shared secret.
//       Successful enrollments (p10-ec, p10-rsa, crmf-ec, p10-idproof) must echo transactionId,
//       dataReturn and the senderNonce (as recipientNonce), add a fresh senderNonce, and return the
//       certificate with its issuing CA; p10-unknown-control must fail with badRequest (CMC-9),
//       p10-badsig with badMessageCheck (CMC-16), and a replay of p10-ec with badRequest (CMC-53).
//       With IDENT and SECRET also "authdata" (CMC-18): PKIData in AuthenticatedData (HMAC-SHA256, a
//       PasswordRecipientInfo whose password is UTF-8 IDENT || SECRET), no SignedData, no HTTP
//       credentials: must be issued like the above; with a wrong secret: failed + badMessageCheck, bodyList [0].
//   java -cp ... CmcInterop gen-extra OUTDIR
//       Offline: authdata.der (AuthenticatedData under ident "bc-ident" and CMC_SECRET) and query-pending.der
//       (a Query Pending for a random pendToken), with keys and descriptions, self-checked.
//   java -cp ... CmcInterop pending-start HOST:PORT ROOT.pem USER PASSWORD STATEFILE
//       Live, on the label $EST_PENDING_LABEL (default "manual"), with HTTP Basic: a PKCS#10 request for
//       CN=bc-cmc-pending.example must be answered 200 pending(3), bodyList [4], pendInfo (8-byte pendToken,
//       pendTime); a Query Pending at once (signed by the request key, sid = its SKI) must be pending again with
//       the same pendInfo (CMC-64). Writes the key, pendToken, pendTime and SKI to STATEFILE and prints
//       "PENDTOKEN <hex>".
//   java -cp ... CmcInterop pending-finish HOST:PORT ROOT.pem USER PASSWORD STATEFILE
//       Live, after the operator approved: the Query Pending must return success for its bodyPartID (7) and the
//       certificate for the held key (CN=bc-cmc-pending.example, chaining to ROOT.pem); a Query Pending with a
//       random pendToken must fail with badRequest, bodyList [7], HTTP 4xx.
// Every check asserts; any failure prints the reason and exits 1.
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.FileWriter;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.math.BigInteger;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.security.Security;
import java.security.cert.CertPath;
import java.security.cert.CertPathBuilder;
import java.security.cert.CertPathValidator;
import java.security.cert.CertStore;
import java.security.cert.CertificateFactory;
import java.security.cert.CollectionCertStoreParameters;
import java.security.cert.PKIXBuilderParameters;
import java.security.cert.PKIXCertPathBuilderResult;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509CertSelector;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;
import javax.net.ssl.HttpsURLConnection;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

import org.bouncycastle.asn1.ASN1Encodable;
import org.bouncycastle.asn1.ASN1Encoding;
import org.bouncycastle.asn1.ASN1TaggedObject;
import org.bouncycastle.asn1.ASN1Integer;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.ASN1OctetString;
import org.bouncycastle.asn1.ASN1Primitive;
import org.bouncycastle.asn1.ASN1Sequence;
import org.bouncycastle.asn1.ASN1UTF8String;
import org.bouncycastle.asn1.DERNull;
import org.bouncycastle.asn1.DEROctetString;
import org.bouncycastle.asn1.DERSequence;
import org.bouncycastle.asn1.DERSet;
import org.bouncycastle.asn1.DERUTF8String;
import org.bouncycastle.asn1.cmc.BodyPartID;
import org.bouncycastle.asn1.cmc.BodyPartReference;
import org.bouncycastle.asn1.cmc.CMCObjectIdentifiers;
import org.bouncycastle.asn1.cmc.CMCStatusInfoV2;
import org.bouncycastle.asn1.cmc.CertificationRequest;
import org.bouncycastle.asn1.cmc.IdentityProofV2;
import org.bouncycastle.asn1.cmc.OtherMsg;
import org.bouncycastle.asn1.cmc.OtherStatusInfo;
import org.bouncycastle.asn1.cmc.PendInfo;
import org.bouncycastle.asn1.cmc.PKIData;
import org.bouncycastle.asn1.cmc.PKIResponse;
import org.bouncycastle.asn1.cmc.TaggedAttribute;
import org.bouncycastle.asn1.cmc.TaggedCertificationRequest;
import org.bouncycastle.asn1.cmc.TaggedContentInfo;
import org.bouncycastle.asn1.cmc.TaggedRequest;
import org.bouncycastle.asn1.cms.CMSObjectIdentifiers;
import org.bouncycastle.asn1.cms.ContentInfo;
import org.bouncycastle.asn1.cms.SignedData;
import org.bouncycastle.asn1.cms.SignerInfo;
import org.bouncycastle.asn1.crmf.CertReqMsg;
import org.bouncycastle.asn1.crmf.POPOSigningKey;
import org.bouncycastle.asn1.crmf.ProofOfPossession;
import org.bouncycastle.asn1.nist.NISTObjectIdentifiers;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.ExtensionsGenerator;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.SubjectKeyIdentifier;
import org.bouncycastle.asn1.x509.SubjectPublicKeyInfo;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.crmf.CertificateRequestMessage;
import org.bouncycastle.cert.crmf.CertificateRequestMessageBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cms.CMSAlgorithm;
import org.bouncycastle.cms.CMSAuthenticatedData;
import org.bouncycastle.cms.CMSAuthenticatedDataGenerator;
import org.bouncycastle.cms.CMSProcessableByteArray;
import org.bouncycastle.cms.CMSSignedData;
import org.bouncycastle.cms.CMSSignedDataGenerator;
import org.bouncycastle.cms.PasswordRecipient;
import org.bouncycastle.cms.PasswordRecipientInformation;
import org.bouncycastle.cms.RecipientInformation;
import org.bouncycastle.cms.SignerInformation;
import org.bouncycastle.cms.jcajce.JceCMSMacCalculatorBuilder;
import org.bouncycastle.cms.jcajce.JcePasswordAuthenticatedRecipient;
import org.bouncycastle.cms.jcajce.JcePasswordRecipientInfoGenerator;
import org.bouncycastle.cms.jcajce.JcaSignerInfoGeneratorBuilder;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoVerifierBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.openssl.jcajce.JcaPKCS8Generator;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaContentVerifierProviderBuilder;
import org.bouncycastle.operator.jcajce.JcaDigestCalculatorProviderBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;
import org.bouncycastle.util.encoders.Hex;

public class CmcInterop {
    static final String DEFAULT_SECRET = "bc-shared-secret-0123456789";
    static final String DEFAULT_IDENT = "bc-ident";
    static final ASN1ObjectIdentifier UNKNOWN_CONTROL = new ASN1ObjectIdentifier("1.3.6.1.4.1.55555.1");
    static final String OID_PKIDATA = "1.3.6.1.5.5.7.12.2";
    static final String OID_PKIRESPONSE = "1.3.6.1.5.5.7.12.3";
    static final String OID_DATA = "1.2.840.113549.1.7.1";
    static final String OID_AUTHDATA = "1.2.840.113549.1.9.16.1.2";
    static final String CN_AUTHDATA = "bc-cmc-authdata.example";
    static final String CN_PENDING = "bc-cmc-pending.example";
    /** Body part IDs shared by every request built here. */
    static final long BP_TXID = 1, BP_SNONCE = 2, BP_DATARETURN = 3, BP_REQ = 4, BP_IDENT = 5, BP_IDPROOF = 6,
        BP_UNKNOWN = 9, BP_QUERY = 7;

    static final SecureRandom RNG = new SecureRandom();
    static int checks = 0;

    static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError("FAILED: " + what);
        }
        checks++;
        System.out.println("ok: " + what);
    }

    static void note(String s) {
        System.out.println("   " + s);
    }

    static String hex(byte[] b) {
        return Hex.toHexString(b);
    }

    // ------------------------------------------------------------------------------------------
    // Request builders, shared by gen and live mode.
    // ------------------------------------------------------------------------------------------

    /** What to build. */
    static final class Spec {
        final String name;      // file stem / label, e.g. "p10-ec"
        final String keyAlg;    // "EC" (P-256) or "RSA" (2048)
        final String cn;
        boolean crmf;
        String ident;           // non-null: add identification + identityProofV2
        String secret;
        boolean unknownControl;
        boolean badSig;
        boolean authData;       // AuthenticatedData(PKIData) with a pwri for ident || secret (CMC-18)

        Spec(String name, String keyAlg, String cn) {
            this.name = name;
            this.keyAlg = keyAlg;
            this.cn = cn;
        }
    }

    /** A built Full PKI Request and everything needed to check the answer to it. */
    static final class Req {
        Spec spec;
        KeyPair kp;
        String sigAlg;
        X500Name subject;
        byte[] ski;
        BigInteger transactionId;
        byte[] senderNonce;
        byte[] dataReturn;
        byte[] reqSequenceDer;  // DER of PKIData.reqSequence (tag and length included)
        byte[] identityKey;     // SHA-256(secret || ident), for idproof
        byte[] witness;
        int flippedOffset = -1; // badSig: offset in `der` of the flipped byte
        byte[] der;             // DER ContentInfo(SignedData(PKIData)), or AuthenticatedData(PKIData)
        byte[] pkiDataDer;      // the encapsulated PKIData
        long bodyPart = BP_REQ; // the body part whose status the response must report
        byte[] pendToken;       // a Query Pending: the pendToken asked about
    }

    static Spec[] genSpecs(String secret) {
        Spec ec = new Spec("p10-ec", "EC", "bc-cmc-p10.example");
        Spec rsa = new Spec("p10-rsa", "RSA", "bc-cmc-rsa.example");
        Spec crmf = new Spec("crmf-ec", "EC", "bc-cmc-crmf.example");
        crmf.crmf = true;
        Spec idp = new Spec("p10-idproof", "EC", "bc-cmc-idp.example");
        idp.ident = DEFAULT_IDENT;
        idp.secret = secret;
        Spec unk = new Spec("p10-unknown-control", "EC", "bc-cmc-p10.example");
        unk.unknownControl = true;
        Spec bad = new Spec("p10-badsig", "EC", "bc-cmc-p10.example");
        bad.badSig = true;
        return new Spec[] {ec, rsa, crmf, idp, unk, bad};
    }

    static KeyPair keyPair(String alg) throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance(alg, "BC");
        if (alg.equals("EC")) {
            g.initialize(new ECGenParameterSpec("secp256r1"), RNG);
        } else {
            g.initialize(2048, RNG);
        }
        return g.generateKeyPair();
    }

    static ContentSigner signer(Req r) throws Exception {
        return new JcaContentSignerBuilder(r.sigAlg).setProvider("BC").build(r.kp.getPrivate());
    }

    static TaggedAttribute control(long bodyPartId, ASN1ObjectIdentifier type, ASN1Encodable value) {
        return new TaggedAttribute(new BodyPartID(bodyPartId), type, new DERSet(value));
    }

    /** The requested extensions: SAN dNSName = CN, SubjectKeyIdentifier (RFC 5280 method 1). */
    static ExtensionsGenerator requestedExtensions(Req r) throws Exception {
        ExtensionsGenerator eg = new ExtensionsGenerator();
        eg.addExtension(Extension.subjectAlternativeName, false,
            new GeneralNames(new GeneralName(GeneralName.dNSName, r.spec.cn)));
        eg.addExtension(Extension.subjectKeyIdentifier, false, new SubjectKeyIdentifier(r.ski));
        return eg;
    }

    static TaggedRequest p10Request(Req r) throws Exception {
        PKCS10CertificationRequest p10 = new JcaPKCS10CertificationRequestBuilder(r.subject, r.kp.getPublic())
            .addAttribute(PKCSObjectIdentifiers.pkcs_9_at_extensionRequest, requestedExtensions(r).generate())
            .build(signer(r));
        // asn1.cmc.CertificationRequest is BC's own CMC-module view of a PKCS#10 request.
        CertificationRequest cr = CertificationRequest.getInstance(p10.getEncoded());
        return new TaggedRequest(new TaggedCertificationRequest(new BodyPartID(BP_REQ), cr));
    }

    static TaggedRequest crmfRequest(Req r) throws Exception {
        CertificateRequestMessageBuilder b = new CertificateRequestMessageBuilder(BigInteger.valueOf(BP_REQ));
        b.setSubject(r.subject);
        b.setPublicKey(SubjectPublicKeyInfo.getInstance(r.kp.getPublic().getEncoded()));
        b.addExtension(Extension.subjectAlternativeName, false,
            new GeneralNames(new GeneralName(GeneralName.dNSName, r.spec.cn)));
        b.addExtension(Extension.subjectKeyIdentifier, false, new SubjectKeyIdentifier(r.ski));
        // With subject and publicKey in the template, BC signs the DER CertRequest
        // (ProofOfPossessionSigningKeyBuilder(CertRequest)): POPOSigningKey without poposkInput.
        b.setProofOfPossessionSigningKeySigner(signer(r));
        CertificateRequestMessage m = b.build();
        return new TaggedRequest(m.toASN1Structure());
    }

    static byte[] sha256(byte[]... parts) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        for (byte[] p : parts) {
            md.update(p);
        }
        return md.digest();
    }

    static byte[] hmacSha256(byte[] key, byte[] data) throws Exception {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
        return mac.doFinal(data);
    }

    /** RFC 5272 §6.2.1 / CMC-44: key = SHA-256(sharedSecret || identification UTF-8). */
    static byte[] identityKey(String secret, String ident) throws Exception {
        return sha256(secret.getBytes(StandardCharsets.UTF_8), ident.getBytes(StandardCharsets.UTF_8));
    }

    static Req build(Spec s) throws Exception {
        Req r = new Req();
        r.spec = s;
        r.kp = keyPair(s.keyAlg);
        r.sigAlg = s.keyAlg.equals("EC") ? "SHA256withECDSA" : "SHA256withRSA";
        r.subject = new X500Name("CN=" + s.cn);
        r.ski = new JcaX509ExtensionUtils().createSubjectKeyIdentifier(r.kp.getPublic()).getKeyIdentifier();
        r.transactionId = new BigInteger(63, RNG).add(BigInteger.ONE);
        r.senderNonce = new byte[16];
        RNG.nextBytes(r.senderNonce);
        r.dataReturn = "bc-data-return".getBytes(StandardCharsets.US_ASCII);

        TaggedRequest[] reqs = {s.crmf ? crmfRequest(r) : p10Request(r)};
        r.reqSequenceDer = new DERSequence(reqs).getEncoded(ASN1Encoding.DER);

        List<TaggedAttribute> controls = new ArrayList<>();
        controls.add(control(BP_TXID, CMCObjectIdentifiers.id_cmc_transactionId, new ASN1Integer(r.transactionId)));
        controls.add(control(BP_SNONCE, CMCObjectIdentifiers.id_cmc_senderNonce, new DEROctetString(r.senderNonce)));
        controls.add(control(BP_DATARETURN, CMCObjectIdentifiers.id_cmc_dataReturn, new DEROctetString(r.dataReturn)));
        if (s.ident != null) {
            controls.add(control(BP_IDENT, CMCObjectIdentifiers.id_cmc_identification, new DERUTF8String(s.ident)));
        }
        if (s.ident != null && !s.authData) {
            r.identityKey = identityKey(s.secret, s.ident);
            r.witness = hmacSha256(r.identityKey, r.reqSequenceDer);
            IdentityProofV2 proof = new IdentityProofV2(
                new AlgorithmIdentifier(NISTObjectIdentifiers.id_sha256),
                new AlgorithmIdentifier(PKCSObjectIdentifiers.id_hmacWithSHA256, DERNull.INSTANCE),
                r.witness);
            controls.add(control(BP_IDPROOF, CMCObjectIdentifiers.id_cmc_identityProofV2, proof));
        }
        if (s.unknownControl) {
            controls.add(control(BP_UNKNOWN, UNKNOWN_CONTROL, DERNull.INSTANCE));
        }
        PKIData pkiData = new PKIData(controls.toArray(new TaggedAttribute[0]), reqs,
            new TaggedContentInfo[0], new OtherMsg[0]);
        byte[] pkiDataDer = pkiData.getEncoded(ASN1Encoding.DER);
        r.pkiDataDer = pkiDataDer;
        // The witness covers reqSequence exactly as it is encoded inside PKIData.
        byte[] inPkiData = ASN1Sequence.getInstance(pkiDataDer).getObjectAt(1).toASN1Primitive()
            .getEncoded(ASN1Encoding.DER);
        if (!Arrays.equals(inPkiData, r.reqSequenceDer)) {
            throw new IllegalStateException("reqSequence DER differs inside PKIData");
        }

        if (s.authData) {
            // CMC-18: no SignedData at all; the PKCS#10 inside is signed by its own key only.
            r.der = authenticate(pkiDataDer, s.ident, s.secret);
            return r;
        }
        r.der = signPkiData(r, pkiDataDer);

        if (s.badSig) {
            r.der = flipSignature(r);
        }
        return r;
    }

    /** ContentInfo(SignedData(PKIData)) signed by r's key, sid = subjectKeyIdentifier r.ski, no certificates. */
    static byte[] signPkiData(Req r, byte[] pkiDataDer) throws Exception {
        CMSSignedDataGenerator gen = new CMSSignedDataGenerator();
        gen.addSignerInfoGenerator(
            new JcaSignerInfoGeneratorBuilder(new JcaDigestCalculatorProviderBuilder().setProvider("BC").build())
                .build(signer(r), r.ski)); // sid = subjectKeyIdentifier (CMC-17)
        CMSSignedData sd = gen.generate(new CMSProcessableByteArray(CMCObjectIdentifiers.id_cct_PKIData, pkiDataDer),
            true);
        // BC writes BER (indefinite lengths, constructed OCTET STRING); re-encode as DER.
        return sd.toASN1Structure().getEncoded(ASN1Encoding.DER);
    }

    /** The pwri password of an AuthenticatedData request (CMC-18): UTF-8 Identification || shared secret. */
    static char[] authPassword(String ident, String secret) {
        return (ident + secret).toCharArray(); // PKCS5_SCHEME2_UTF8: UTF-8(ident + secret) = UTF-8(ident) || UTF-8(secret)
    }

    /**
     * ContentInfo(AuthenticatedData(PKIData)), RFC 5272 §3.2 / RFC 5652 §9, as BC 1.72 builds it:
     * a random 256-bit HMAC-SHA256 key (macAlgorithm hmacWithSHA256), authAttrs from BC's
     * DefaultAuthenticatedAttributeTableGenerator (contentType, messageDigest SHA-256 and
     * cmsAlgorithmProtection), and one PasswordRecipientInfo: PBKDF2 (PRF hmacWithSHA256, BC's
     * default 20-byte salt and 1024 iterations) with the RFC 3211 id-alg-PWRI-KEK wrap over AES-256-CBC.
     */
    static byte[] authenticate(byte[] pkiDataDer, String ident, String secret) throws Exception {
        CMSAuthenticatedDataGenerator gen = new CMSAuthenticatedDataGenerator();
        gen.addRecipientInfoGenerator(new JcePasswordRecipientInfoGenerator(CMSAlgorithm.AES256_CBC,
            authPassword(ident, secret)).setProvider("BC")
            .setPasswordConversionScheme(PasswordRecipient.PKCS5_SCHEME2_UTF8)
            .setPRF(PasswordRecipient.PRF.HMacSHA256));
        CMSAuthenticatedData ad = gen.generate(
            new CMSProcessableByteArray(CMCObjectIdentifiers.id_cct_PKIData, pkiDataDer),
            new JceCMSMacCalculatorBuilder(PKCSObjectIdentifiers.id_hmacWithSHA256, 256).setProvider("BC")
                .setSecureRandom(RNG).build(),
            new JcaDigestCalculatorProviderBuilder().setProvider("BC").build()
                .get(new AlgorithmIdentifier(NISTObjectIdentifiers.id_sha256)));
        // BC writes the eContent as a constructed BER OCTET STRING; re-encode as DER (the MAC covers
        // the authAttrs, which BC already writes as a DER SET, so it survives the re-encoding).
        return ad.toASN1Structure().getEncoded(ASN1Encoding.DER);
    }

    static Spec authDataSpec(String ident, String secret) {
        return authDataSpec("authdata", ident, secret);
    }

    static Spec authDataSpec(String name, String ident, String secret) {
        Spec s = new Spec(name, "EC", CN_AUTHDATA);
        s.authData = true;
        s.ident = ident;
        s.secret = secret;
        return s;
    }

    /**
     * A Query Pending (CMC-64, RFC 5272 §6.13) for a held request: a fresh PKIData with transactionId,
     * senderNonce and one queryPending control (OCTET STRING pendToken), empty reqSequence, signed with
     * the held request's key (sid = its subjectKeyIdentifier, no certificates).
     */
    static Req buildQuery(String name, KeyPair kp, X500Name subject, byte[] pendToken) throws Exception {
        Req r = new Req();
        r.spec = new Spec(name, kp.getPublic().getAlgorithm().startsWith("EC") ? "EC" : "RSA",
            subject.toString().replaceFirst("^CN=", ""));
        r.kp = kp;
        r.sigAlg = r.spec.keyAlg.equals("EC") ? "SHA256withECDSA" : "SHA256withRSA";
        r.subject = subject;
        r.ski = new JcaX509ExtensionUtils().createSubjectKeyIdentifier(kp.getPublic()).getKeyIdentifier();
        r.transactionId = new BigInteger(63, RNG).add(BigInteger.ONE);
        r.senderNonce = new byte[16];
        RNG.nextBytes(r.senderNonce);
        r.dataReturn = null;
        r.bodyPart = BP_QUERY;
        r.pendToken = pendToken.clone();
        TaggedAttribute[] controls = {
            control(BP_TXID, CMCObjectIdentifiers.id_cmc_transactionId, new ASN1Integer(r.transactionId)),
            control(BP_SNONCE, CMCObjectIdentifiers.id_cmc_senderNonce, new DEROctetString(r.senderNonce)),
            control(BP_QUERY, CMCObjectIdentifiers.id_cmc_queryPending, new DEROctetString(r.pendToken)),
        };
        r.pkiDataDer = new PKIData(controls, new TaggedRequest[0], new TaggedContentInfo[0], new OtherMsg[0])
            .getEncoded(ASN1Encoding.DER);
        r.der = signPkiData(r, r.pkiDataDer);
        return r;
    }

    // ------------------------------------------------------------------------------------------
    // Independent AuthenticatedData check: JCE only (SunJCE HMAC/AES), no BC CMS classes, the way a
    // strict DER receiver does it (RFC 5652 §9.2, RFC 3211 §2.3.2, RFC 8018 PBKDF2).
    // ------------------------------------------------------------------------------------------

    static byte[] pbkdf2(String hmac, byte[] password, byte[] salt, int iterations, int len) throws Exception {
        Mac mac = Mac.getInstance(hmac); // SunJCE: BC is added last
        mac.init(new SecretKeySpec(password, hmac));
        byte[] out = new byte[len];
        int hLen = mac.getMacLength();
        for (int block = 1, off = 0; off < len; block++, off += hLen) {
            mac.update(salt);
            byte[] u = mac.doFinal(new byte[] {(byte) (block >>> 24), (byte) (block >>> 16), (byte) (block >>> 8),
                (byte) block});
            byte[] t = u.clone();
            for (int i = 1; i < iterations; i++) {
                u = mac.doFinal(u);
                for (int j = 0; j < t.length; j++) {
                    t[j] ^= u[j];
                }
            }
            System.arraycopy(t, 0, out, off, Math.min(hLen, len - off));
        }
        return out;
    }

    static byte[] aesCbcDecrypt(byte[] key, byte[] iv, byte[] data, int off, int len) throws Exception {
        javax.crypto.Cipher c = javax.crypto.Cipher.getInstance("AES/CBC/NoPadding");
        c.init(javax.crypto.Cipher.DECRYPT_MODE, new SecretKeySpec(key, "AES"), new javax.crypto.spec.IvParameterSpec(iv));
        return c.doFinal(data, off, len);
    }

    /** RFC 3211 §2.3.2 key unwrap; throws on a bad length or check bytes. */
    static byte[] rfc3211Unwrap(byte[] kek, byte[] iv, byte[] wrapped) throws Exception {
        int bs = 16;
        int n = wrapped.length / bs;
        if (wrapped.length % bs != 0 || n < 2) {
            throw new IllegalArgumentException("wrapped key is not 2+ whole blocks");
        }
        // 1. the last block, with the previous ciphertext block as IV
        byte[] last = aesCbcDecrypt(kek, Arrays.copyOfRange(wrapped, (n - 2) * bs, (n - 1) * bs), wrapped, (n - 1) * bs, bs);
        // 2. the first n-1 blocks, with that plaintext block as IV: the outer layer is gone
        byte[] head = aesCbcDecrypt(kek, last, wrapped, 0, (n - 1) * bs);
        byte[] inner = new byte[wrapped.length];
        System.arraycopy(head, 0, inner, 0, head.length);
        System.arraycopy(last, 0, inner, head.length, bs);
        // 3. the inner layer with the real IV
        byte[] blob = aesCbcDecrypt(kek, iv, inner, 0, inner.length);
        int len = blob[0] & 0xff;
        if (len < 3 || 4 + len > blob.length) {
            throw new IllegalArgumentException("bad wrapped key length " + len);
        }
        for (int i = 0; i < 3; i++) {
            if ((byte) ~blob[1 + i] != blob[4 + i]) {
                throw new IllegalArgumentException("RFC 3211 check bytes do not match (wrong password)");
            }
        }
        return Arrays.copyOfRange(blob, 4, 4 + len);
    }

    static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    /** What the independent check found. */
    static final class AuthCheck {
        String prf;
        byte[] salt;
        int iterations;
        byte[] kek;
        byte[] kekIv;
        byte[] macKey;
        byte[] authAttrsSet;
        byte[] mac;
        List<String> attrTypes = new ArrayList<>();
    }

    /** Verify ContentInfo(AuthenticatedData) `der` with the password; throws IllegalArgumentException on any defect. */
    static AuthCheck verifyAuthIndependently(byte[] der, byte[] password) throws Exception {
        AuthCheck out = new AuthCheck();
        if (!Arrays.equals(ASN1Primitive.fromByteArray(der).getEncoded(ASN1Encoding.DER), der)) {
            throw new IllegalArgumentException("not DER");
        }
        ContentInfo ci = ContentInfo.getInstance(der);
        if (!ci.getContentType().getId().equals(OID_AUTHDATA)) {
            throw new IllegalArgumentException("contentType " + ci.getContentType());
        }
        ASN1Sequence adSeq = ASN1Sequence.getInstance(ci.getContent());
        org.bouncycastle.asn1.cms.AuthenticatedData ad = org.bouncycastle.asn1.cms.AuthenticatedData.getInstance(adSeq);
        if (!ad.getMacAlgorithm().getAlgorithm().equals(PKCSObjectIdentifiers.id_hmacWithSHA256)) {
            throw new IllegalArgumentException("macAlgorithm " + ad.getMacAlgorithm().getAlgorithm());
        }
        if (ad.getDigestAlgorithm() == null || !ad.getDigestAlgorithm().getAlgorithm().equals(NISTObjectIdentifiers.id_sha256)) {
            throw new IllegalArgumentException("digestAlgorithm is not SHA-256");
        }
        if (ad.getRecipientInfos().size() != 1) {
            throw new IllegalArgumentException(ad.getRecipientInfos().size() + " recipientInfos");
        }
        ASN1Encodable info = org.bouncycastle.asn1.cms.RecipientInfo.getInstance(ad.getRecipientInfos().getObjectAt(0))
            .getInfo();
        if (!(info instanceof org.bouncycastle.asn1.cms.PasswordRecipientInfo)) {
            throw new IllegalArgumentException("the recipient is not a pwri");
        }
        org.bouncycastle.asn1.cms.PasswordRecipientInfo pwri = (org.bouncycastle.asn1.cms.PasswordRecipientInfo) info;
        if (!pwri.getKeyDerivationAlgorithm().getAlgorithm().equals(PKCSObjectIdentifiers.id_PBKDF2)) {
            throw new IllegalArgumentException("keyDerivationAlgorithm " + pwri.getKeyDerivationAlgorithm().getAlgorithm());
        }
        org.bouncycastle.asn1.pkcs.PBKDF2Params pb = org.bouncycastle.asn1.pkcs.PBKDF2Params.getInstance(
            pwri.getKeyDerivationAlgorithm().getParameters());
        ASN1ObjectIdentifier prf = pb.getPrf().getAlgorithm();
        out.prf = prf.equals(PKCSObjectIdentifiers.id_hmacWithSHA256) ? "HmacSHA256"
            : prf.equals(PKCSObjectIdentifiers.id_hmacWithSHA1) ? "HmacSHA1" : null;
        if (out.prf == null) {
            throw new IllegalArgumentException("PBKDF2 PRF " + prf);
        }
        out.salt = pb.getSalt();
        out.iterations = pb.getIterationCount().intValueExact();
        AlgorithmIdentifier kea = pwri.getKeyEncryptionAlgorithm();
        if (!kea.getAlgorithm().getId().equals("1.2.840.113549.1.9.16.3.9")) { // id-alg-PWRI-KEK
            throw new IllegalArgumentException("keyEncryptionAlgorithm " + kea.getAlgorithm() + " is not id-alg-PWRI-KEK");
        }
        AlgorithmIdentifier kek = AlgorithmIdentifier.getInstance(kea.getParameters());
        if (!kek.getAlgorithm().equals(NISTObjectIdentifiers.id_aes256_CBC)) {
            throw new IllegalArgumentException("PWRI KEK cipher " + kek.getAlgorithm());
        }
        if (pb.getKeyLength() != null && pb.getKeyLength().intValueExact() != 32) {
            throw new IllegalArgumentException("PBKDF2 keyLength " + pb.getKeyLength());
        }
        out.kekIv = ASN1OctetString.getInstance(kek.getParameters()).getOctets();
        out.kek = pbkdf2(out.prf, password, out.salt, out.iterations, 32);
        out.macKey = rfc3211Unwrap(out.kek, out.kekIv, pwri.getEncryptedKey().getOctets());
        if (out.macKey.length != 32) {
            throw new IllegalArgumentException("MAC key is " + out.macKey.length + " bytes, not 32");
        }
        // authAttrs [2] IMPLICIT: the MAC input is the same bytes with the SET tag (RFC 5652 §9.2).
        byte[] authAttrs = null;
        for (ASN1Encodable e : adSeq) {
            if (e instanceof ASN1TaggedObject && ((ASN1TaggedObject) e).getTagNo() == 2) {
                authAttrs = e.toASN1Primitive().getEncoded(ASN1Encoding.DER);
            }
        }
        if (authAttrs == null || indexOf(der, authAttrs) < 0 || authAttrs[0] != (byte) 0xA2) {
            throw new IllegalArgumentException("authAttrs [2] not found as such in the encoding");
        }
        out.authAttrsSet = authAttrs.clone();
        out.authAttrsSet[0] = 0x31;
        out.mac = ad.getMac().getOctets();
        if (!MessageDigest.isEqual(hmacSha256(out.macKey, out.authAttrsSet), out.mac)) {
            throw new IllegalArgumentException("the HMAC-SHA256 over the DER authAttrs does not match");
        }
        org.bouncycastle.asn1.cms.ContentInfo eci = ad.getEncapsulatedContentInfo();
        byte[] content = ASN1OctetString.getInstance(eci.getContent()).getOctets();
        byte[] md = null;
        ASN1ObjectIdentifier ct = null;
        for (ASN1Encodable e : ad.getAuthAttrs()) {
            org.bouncycastle.asn1.cms.Attribute a = org.bouncycastle.asn1.cms.Attribute.getInstance(e);
            out.attrTypes.add(a.getAttrType().getId());
            if (a.getAttrType().equals(org.bouncycastle.asn1.cms.CMSAttributes.messageDigest)) {
                md = ASN1OctetString.getInstance(a.getAttrValues().getObjectAt(0)).getOctets();
            } else if (a.getAttrType().equals(org.bouncycastle.asn1.cms.CMSAttributes.contentType)) {
                ct = ASN1ObjectIdentifier.getInstance(a.getAttrValues().getObjectAt(0));
            }
        }
        if (ct == null || !ct.equals(CMCObjectIdentifiers.id_cct_PKIData) || !eci.getContentType().equals(ct)) {
            throw new IllegalArgumentException("contentType attribute / eContentType is not id-cct-PKIData");
        }
        if (md == null || !Arrays.equals(md, sha256(content))) {
            throw new IllegalArgumentException("messageDigest attribute is not SHA-256 of the PKIData");
        }
        return out;
    }

    /** `base` (a valid request) with its signature flipped: same key, nonces and bytes but one. */
    static Req badSigOf(Req base, Spec s) throws Exception {
        Req r = new Req();
        r.spec = s;
        r.kp = base.kp;
        r.sigAlg = base.sigAlg;
        r.subject = base.subject;
        r.ski = base.ski;
        r.transactionId = base.transactionId;
        r.senderNonce = base.senderNonce;
        r.dataReturn = base.dataReturn;
        r.reqSequenceDer = base.reqSequenceDer;
        r.der = base.der;
        r.der = flipSignature(r);
        return r;
    }

    /** Rebuild the ContentInfo with the last byte of the (only) SignerInfo signature flipped. */
    static byte[] flipSignature(Req r) throws Exception {
        ContentInfo ci = ContentInfo.getInstance(r.der);
        SignedData sd = SignedData.getInstance(ci.getContent());
        SignerInfo si = SignerInfo.getInstance(sd.getSignerInfos().getObjectAt(0));
        byte[] sig = si.getEncryptedDigest().getOctets();
        sig[sig.length - 1] ^= 0x01; // the last byte of the ECDSA s value (or of the RSA signature)
        SignerInfo bad = new SignerInfo(si.getSID(), si.getDigestAlgorithm(), si.getAuthenticatedAttributes(),
            si.getDigestEncryptionAlgorithm(), new DEROctetString(sig), si.getUnauthenticatedAttributes());
        SignedData badSd = new SignedData(sd.getDigestAlgorithms(), sd.getEncapContentInfo(), sd.getCertificates(),
            sd.getCRLs(), new DERSet(bad));
        byte[] out = new ContentInfo(CMSObjectIdentifiers.signedData, badSd).getEncoded(ASN1Encoding.DER);
        if (out.length != r.der.length) {
            throw new IllegalStateException("re-encoding changed the length");
        }
        int diff = 0;
        for (int i = 0; i < out.length; i++) {
            if (out[i] != r.der[i]) {
                diff++;
                r.flippedOffset = i;
            }
        }
        if (diff != 1) {
            throw new IllegalStateException("expected exactly one byte to differ, got " + diff);
        }
        return out;
    }

    // ------------------------------------------------------------------------------------------
    // Self-checks of a built request, by parsing it back with BC (used by gen mode).
    // ------------------------------------------------------------------------------------------

    static void selfCheck(Req r) throws Exception {
        String n = r.spec.name;
        CMSSignedData sd = new CMSSignedData(r.der);
        check(Arrays.equals(sd.toASN1Structure().getEncoded(ASN1Encoding.DER), r.der), n + ": DER round trip");
        check(OID_PKIDATA.equals(sd.getSignedContentTypeOID()), n + ": eContentType id-cct-PKIData");
        check(sd.getCertificates().getMatches(null).isEmpty(), n + ": no certificates");
        Collection<SignerInformation> signers = sd.getSignerInfos().getSigners();
        check(signers.size() == 1, n + ": exactly one SignerInfo (CMC-17)");
        SignerInformation si = signers.iterator().next();
        check(Arrays.equals(si.getSID().getSubjectKeyIdentifier(), r.ski) && si.getSID().getIssuer() == null,
            n + ": sid is subjectKeyIdentifier " + hex(r.ski));
        boolean valid = si.verify(new JcaSimpleSignerInfoVerifierBuilder().setProvider("BC").build(r.kp.getPublic()));
        check(valid == !r.spec.badSig, n + (r.spec.badSig ? ": signature does NOT verify" : ": signature verifies"));

        PKIData pd = PKIData.getInstance(ASN1Primitive.fromByteArray((byte[]) sd.getSignedContent().getContent()));
        TaggedAttribute[] ctl = pd.getControlSequence();
        int expected = 3 + (r.spec.ident != null ? 2 : 0) + (r.spec.unknownControl ? 1 : 0);
        check(ctl.length == expected, n + ": " + expected + " controls");
        check(pd.getReqSequence().length == 1 && pd.getCmsSequence().length == 0
            && pd.getOtherMsgSequence().length == 0, n + ": one request, empty cmsSequence and otherMsgSequence");
        TaggedRequest tr = pd.getReqSequence()[0];
        if (r.spec.crmf) {
            check(tr.getTagNo() == TaggedRequest.CRM, n + ": request is crm");
            CertificateRequestMessage m = new CertificateRequestMessage(CertReqMsg.getInstance(tr.getValue()));
            check(m.toASN1Structure().getCertReq().getCertReqId().getValue().longValue() == BP_REQ,
                n + ": certReqId = " + BP_REQ);
            check(m.getProofOfPossessionType() == CertificateRequestMessage.popSigningKey, n + ": POP is signature");
            POPOSigningKey popo = POPOSigningKey.getInstance(
                ProofOfPossession.getInstance(m.toASN1Structure().getPopo()).getObject());
            check(popo.getPoposkInput() == null, n + ": no poposkInput (CMC-14)");
            check(m.isValidSigningKeyPOP(new JcaContentVerifierProviderBuilder().setProvider("BC")
                .build(r.kp.getPublic())), n + ": POP signature verifies");
            check(m.getCertTemplate().getExtensions().getExtension(Extension.subjectKeyIdentifier) != null,
                n + ": template carries SubjectKeyIdentifier");
        } else {
            check(tr.getTagNo() == TaggedRequest.TCR, n + ": request is tcr");
            TaggedCertificationRequest tcr = TaggedCertificationRequest.getInstance(tr.getValue());
            ASN1Sequence tcrSeq = ASN1Sequence.getInstance(tcr);
            check(BodyPartID.getInstance(tcrSeq.getObjectAt(0)).getID() == BP_REQ, n + ": tcr bodyPartID " + BP_REQ);
            PKCS10CertificationRequest p10 = new PKCS10CertificationRequest(
                CertificationRequest.getInstance(tcrSeq.getObjectAt(1)).getEncoded(ASN1Encoding.DER));
            check(p10.isSignatureValid(new JcaContentVerifierProviderBuilder().setProvider("BC")
                .build(r.kp.getPublic())), n + ": PKCS#10 signature verifies");
            byte[] ski = SubjectKeyIdentifier.getInstance(p10.getRequestedExtensions()
                .getExtensionParsedValue(Extension.subjectKeyIdentifier)).getKeyIdentifier();
            check(Arrays.equals(ski, r.ski), n + ": CSR SubjectKeyIdentifier equals sid");
        }
        if (r.spec.ident != null) {
            byte[] reqSeq = ASN1Sequence.getInstance(pd).getObjectAt(1).toASN1Primitive().getEncoded(ASN1Encoding.DER);
            IdentityProofV2 proof = null;
            for (TaggedAttribute a : ctl) {
                if (a.getAttrType().equals(CMCObjectIdentifiers.id_cmc_identityProofV2)) {
                    proof = IdentityProofV2.getInstance(a.getAttrValues().getObjectAt(0));
                }
            }
            check(proof != null && Arrays.equals(proof.getWitness(),
                hmacSha256(identityKey(r.spec.secret, r.spec.ident), reqSeq)), n + ": identityProofV2 witness recomputes");
        }
    }

    /** Self-check of an AuthenticatedData request: independently (JCE), then with BC's own CMS reader. */
    static AuthCheck selfCheckAuth(Req r) throws Exception {
        String n = r.spec.name;
        byte[] pw = (r.spec.ident + r.spec.secret).getBytes(StandardCharsets.UTF_8);
        AuthCheck a;
        try {
            a = verifyAuthIndependently(r.der, pw);
        } catch (IllegalArgumentException e) {
            throw new AssertionError("FAILED: " + n + ": independent AuthenticatedData check: " + e.getMessage());
        }
        check(true, n + ": DER ContentInfo id-ct-authData, macAlgorithm hmacWithSHA256, digestAlgorithm sha256, one pwri"
            + " (PBKDF2 " + a.prf + ", " + a.salt.length + "-byte salt, " + a.iterations + " iterations; id-alg-PWRI-KEK"
            + " aes256-CBC)");
        check(true, n + ": independent check: KEK = PBKDF2(UTF-8 ident || secret), RFC 3211 unwrap gives a 32-byte"
            + " MAC key, HMAC-SHA256 over the DER authAttrs (" + a.attrTypes + ") matches, messageDigest and"
            + " contentType match");
        boolean wrongFails;
        try {
            verifyAuthIndependently(r.der, (r.spec.ident + r.spec.secret + "x").getBytes(StandardCharsets.UTF_8));
            wrongFails = false;
        } catch (IllegalArgumentException e) {
            wrongFails = true;
        }
        check(wrongFails, n + ": a wrong password does not verify (independent check)");

        CMSAuthenticatedData ad = new CMSAuthenticatedData(r.der,
            new JcaDigestCalculatorProviderBuilder().setProvider("BC").build());
        check(PKCSObjectIdentifiers.id_hmacWithSHA256.getId().equals(ad.getMacAlgOID()), n + ": BC reads macAlgorithm "
            + ad.getMacAlgOID());
        Collection<RecipientInformation> rcpts = ad.getRecipientInfos().getRecipients();
        check(rcpts.size() == 1 && rcpts.iterator().next() instanceof PasswordRecipientInformation,
            n + ": BC sees one PasswordRecipientInformation");
        RecipientInformation ri = rcpts.iterator().next();
        byte[] content = ri.getContent(new JcePasswordAuthenticatedRecipient(authPassword(r.spec.ident, r.spec.secret))
            .setProvider("BC").setPasswordConversionScheme(PasswordRecipient.PKCS5_SCHEME2_UTF8));
        check(Arrays.equals(content, r.pkiDataDer) && Arrays.equals(ri.getMac(), ad.getMac())
            && Arrays.equals(ri.getContentDigest(), ad.getContentDigest()),
            n + ": BC's CMSAuthenticatedData + JcePasswordAuthenticatedRecipient verify the MAC and digest");

        PKIData pd = PKIData.getInstance(ASN1Primitive.fromByteArray(content));
        TaggedAttribute[] ctl = pd.getControlSequence();
        String ident = null;
        boolean idproof = false;
        for (TaggedAttribute t : ctl) {
            if (t.getAttrType().equals(CMCObjectIdentifiers.id_cmc_identification)) {
                ident = ASN1UTF8String.getInstance(t.getAttrValues().getObjectAt(0)).getString();
            }
            idproof |= t.getAttrType().equals(CMCObjectIdentifiers.id_cmc_identityProofV2);
        }
        check(ctl.length == 4 && r.spec.ident.equals(ident) && !idproof,
            n + ": controls transactionId, senderNonce, dataReturn, identification \"" + ident + "\" (no identity proof)");
        check(pd.getReqSequence().length == 1 && pd.getReqSequence()[0].getTagNo() == TaggedRequest.TCR,
            n + ": one tcr request");
        ASN1Sequence tcrSeq = ASN1Sequence.getInstance(TaggedCertificationRequest.getInstance(
            pd.getReqSequence()[0].getValue()));
        PKCS10CertificationRequest p10 = new PKCS10CertificationRequest(
            CertificationRequest.getInstance(tcrSeq.getObjectAt(1)).getEncoded(ASN1Encoding.DER));
        check(BodyPartID.getInstance(tcrSeq.getObjectAt(0)).getID() == BP_REQ && p10.isSignatureValid(
            new JcaContentVerifierProviderBuilder().setProvider("BC").build(r.kp.getPublic())),
            n + ": tcr bodyPartID " + BP_REQ + ", PKCS#10 signature verifies (the only signature in the request)");
        return a;
    }

    /** Self-check of a Query Pending request. */
    static void selfCheckQuery(Req r) throws Exception {
        String n = r.spec.name;
        CMSSignedData sd = new CMSSignedData(r.der);
        check(Arrays.equals(sd.toASN1Structure().getEncoded(ASN1Encoding.DER), r.der), n + ": DER round trip");
        check(OID_PKIDATA.equals(sd.getSignedContentTypeOID()), n + ": eContentType id-cct-PKIData");
        check(sd.getCertificates().getMatches(null).isEmpty(), n + ": no certificates");
        Collection<SignerInformation> signers = sd.getSignerInfos().getSigners();
        check(signers.size() == 1, n + ": exactly one SignerInfo");
        SignerInformation si = signers.iterator().next();
        check(Arrays.equals(si.getSID().getSubjectKeyIdentifier(), r.ski) && si.getSID().getIssuer() == null,
            n + ": sid is subjectKeyIdentifier " + hex(r.ski) + " (of the held request's key)");
        check(si.verify(new JcaSimpleSignerInfoVerifierBuilder().setProvider("BC").build(r.kp.getPublic())),
            n + ": signature verifies with the held request's key");
        PKIData pd = PKIData.getInstance(ASN1Primitive.fromByteArray((byte[]) sd.getSignedContent().getContent()));
        TaggedAttribute[] ctl = pd.getControlSequence();
        byte[] token = null;
        for (TaggedAttribute t : ctl) {
            if (t.getAttrType().equals(CMCObjectIdentifiers.id_cmc_queryPending)) {
                check(t.getBodyPartID().getID() == BP_QUERY, n + ": queryPending bodyPartID " + BP_QUERY);
                token = ASN1OctetString.getInstance(t.getAttrValues().getObjectAt(0)).getOctets();
            }
        }
        check(ctl.length == 3 && Arrays.equals(token, r.pendToken),
            n + ": controls transactionId, senderNonce, queryPending " + hex(r.pendToken));
        check(pd.getReqSequence().length == 0 && pd.getCmsSequence().length == 0 && pd.getOtherMsgSequence().length == 0,
            n + ": empty reqSequence, cmsSequence and otherMsgSequence");
    }

    /** Offline: the new request kinds (AuthenticatedData, Query Pending) as files, self-checked. */
    static void genExtra(File dir) throws Exception {
        String secret = System.getenv("CMC_SECRET");
        if (secret == null || secret.isEmpty()) {
            secret = DEFAULT_SECRET;
        }
        if (!dir.isDirectory() && !dir.mkdirs()) {
            throw new IllegalStateException("cannot create " + dir);
        }
        Req a = build(authDataSpec(DEFAULT_IDENT, secret));
        AuthCheck ac = selfCheckAuth(a);
        write(dir, a);
        try (PrintWriter w = new PrintWriter(new FileWriter(new File(dir, "authdata.txt")))) {
            w.println("authdata.der: CMC Full PKI Request as AuthenticatedData(PKIData) (RFC 5272 §3.2), DER, BC 1.72");
            w.println("ContentInfo id-ct-authData 1.2.840.113549.1.9.16.1.2, eContentType id-cct-PKIData, macAlgorithm"
                + " hmacWithSHA256, digestAlgorithm sha256");
            w.println("authAttrs (BC's default): " + ac.attrTypes);
            w.println("PKIData: transactionId " + a.transactionId + ", senderNonce " + hex(a.senderNonce)
                + ", dataReturn \"bc-data-return\", identification \"" + DEFAULT_IDENT + "\"; tcr " + BP_REQ
                + " PKCS#10 CN=" + CN_AUTHDATA + " (P-256, key authdata.key.pem)");
            w.println("pwri password = UTF-8(identification) || UTF-8(secret) = \"" + DEFAULT_IDENT + secret + "\"");
            w.println("PBKDF2 " + ac.prf + " salt " + hex(ac.salt) + " iterations " + ac.iterations + " -> KEK " + hex(ac.kek));
            w.println("id-alg-PWRI-KEK aes256-CBC IV " + hex(ac.kekIv) + "; RFC 3211 unwrap -> HMAC key " + hex(ac.macKey));
            w.println("MAC = HMAC-SHA256(key, DER SET OF authAttrs) = " + hex(ac.mac));
            w.println("File: " + a.der.length + " bytes, SHA-256 " + hex(sha256(a.der)));
        }
        Req q = buildQuery("query-pending", keyPair("EC"), new X500Name("CN=" + CN_PENDING), randomToken());
        selfCheckQuery(q);
        write(dir, q);
        try (PrintWriter w = new PrintWriter(new FileWriter(new File(dir, "query-pending.txt")))) {
            w.println("query-pending.der: CMC Query Pending (RFC 5272 §6.13), SignedData(PKIData), DER, BC 1.72");
            w.println("controls: transactionId " + q.transactionId + ", senderNonce " + hex(q.senderNonce)
                + ", queryPending (bodyPartID " + BP_QUERY + ") pendToken " + hex(q.pendToken) + " (random: unknown to any server)");
            w.println("reqSequence empty; signed by query-pending.key.pem, sid subjectKeyIdentifier " + hex(q.ski)
                + ", no certificates");
            w.println("File: " + q.der.length + " bytes, SHA-256 " + hex(sha256(q.der)));
        }
    }

    static void write(File dir, Req r) throws Exception {
        File der = new File(dir, r.spec.name + ".der");
        try (OutputStream o = new FileOutputStream(der)) {
            o.write(r.der);
        }
        try (JcaPEMWriter w = new JcaPEMWriter(new FileWriter(new File(dir, r.spec.name + ".key.pem")))) {
            w.writeObject(new JcaPKCS8Generator(r.kp.getPrivate(), null));
        }
        System.out.println("wrote " + der + " (" + r.der.length + " bytes)");
    }

    static byte[] randomToken() {
        byte[] t = new byte[8];
        RNG.nextBytes(t);
        return t;
    }

    // ------------------------------------------------------------------------------------------
    // gen mode
    // ------------------------------------------------------------------------------------------

    static void gen(File dir) throws Exception {
        String secret = System.getenv("CMC_SECRET");
        if (secret == null || secret.isEmpty()) {
            secret = DEFAULT_SECRET;
        }
        if (!dir.isDirectory() && !dir.mkdirs()) {
            throw new IllegalStateException("cannot create " + dir);
        }
        Req ec = null;
        for (Spec s : genSpecs(secret)) {
            // p10-badsig is p10-ec.der itself with one signature byte flipped.
            Req r = s.badSig ? badSigOf(ec, s) : build(s);
            if (s.name.equals("p10-ec")) {
                ec = r;
            }
            selfCheck(r);
            File der = new File(dir, s.name + ".der");
            try (OutputStream o = new FileOutputStream(der)) {
                o.write(r.der);
            }
            try (JcaPEMWriter w = new JcaPEMWriter(new FileWriter(new File(dir, s.name + ".key.pem")))) {
                w.writeObject(new JcaPKCS8Generator(r.kp.getPrivate(), null));
            }
            try (PrintWriter w = new PrintWriter(new FileWriter(new File(dir, s.name + ".txt")))) {
                describe(r, w);
            }
            System.out.println("wrote " + der + " (" + r.der.length + " bytes)");
        }
    }

    static String algName(AlgorithmIdentifier a) {
        return a.getAlgorithm().getId() + (a.getParameters() == null ? " (parameters absent)"
            : a.getParameters() instanceof DERNull ? " (parameters NULL)" : " (with parameters)");
    }

    static void describe(Req r, PrintWriter w) throws Exception {
        Spec s = r.spec;
        w.println(s.name + ".der: CMC Full PKI Request (RFC 5272 §3.2), DER ContentInfo, built by Bouncy Castle 1.72");
        w.println("(CmcInterop.java gen). Not base64: base64-encode it to POST it to /fullcmc (RFC 8951).");
        w.println();
        w.println("ContentInfo(id-signedData) / SignedData version 3, eContentType id-cct-PKIData 1.3.6.1.5.5.7.12.2,");
        w.println("  content encapsulated, no certificates, no crls, exactly one SignerInfo:");
        w.println("  sid subjectKeyIdentifier = " + hex(r.ski) + " (= the request's SKI extension, CMC-17)");
        w.println("  signed by the request key (" + s.name + ".key.pem, PKCS#8) with " + r.sigAlg
            + "; BC's default signed attributes");
        w.println("  (contentType, signingTime, messageDigest, cmsAlgorithmProtection 1.2.840.113549.1.9.52).");
        SignerInfo si = SignerInfo.getInstance(SignedData.getInstance(ContentInfo.getInstance(r.der).getContent())
            .getSignerInfos().getObjectAt(0));
        w.println("  SignerInfo digestAlgorithm " + algName(si.getDigestAlgorithm()) + ", signatureAlgorithm "
            + algName(si.getDigestEncryptionAlgorithm()) + ".");
        w.println();
        w.println("PKIData controlSequence:");
        w.println("  bodyPartID " + BP_TXID + ": id-cmc-transactionId 1.3.6.1.5.5.7.7.5 INTEGER " + r.transactionId);
        w.println("  bodyPartID " + BP_SNONCE + ": id-cmc-senderNonce 1.3.6.1.5.5.7.7.6 OCTET STRING " + hex(r.senderNonce));
        w.println("  bodyPartID " + BP_DATARETURN + ": id-cmc-dataReturn 1.3.6.1.5.5.7.7.4 OCTET STRING \"bc-data-return\"");
        if (s.ident != null) {
            w.println("  bodyPartID " + BP_IDENT + ": id-cmc-identification 1.3.6.1.5.5.7.7.2 UTF8String \"" + s.ident + "\"");
            w.println("  bodyPartID " + BP_IDPROOF + ": id-cmc-identityProofV2 1.3.6.1.5.5.7.7.34 { proofAlgID sha256"
                + " (parameters absent), macAlgId hmacWithSHA256 1.2.840.113549.2.9 (parameters NULL), witness }");
        }
        if (s.unknownControl) {
            w.println("  bodyPartID " + BP_UNKNOWN + ": unknown control 1.3.6.1.4.1.55555.1, value NULL");
        }
        w.println("PKIData reqSequence (one request), cmsSequence and otherMsgSequence empty:");
        if (s.crmf) {
            w.println("  crm [1] CertReqMsg, certReqId " + BP_REQ + " (= its bodyPartID), certTemplate:");
            w.println("    subject CN=" + s.cn + ", publicKey = the request key,");
            w.println("    extensions subjectAltName dNSName " + s.cn + ", subjectKeyIdentifier " + hex(r.ski));
            w.println("  popo signature [1] POPOSigningKey over the DER CertRequest, no poposkInput, " + r.sigAlg);
        } else {
            w.println("  tcr [0] TaggedCertificationRequest, bodyPartID " + BP_REQ + ", PKCS#10:");
            w.println("    subject CN=" + s.cn + ", " + (s.keyAlg.equals("EC") ? "P-256" : "RSA-2048") + " key, "
                + r.sigAlg);
            w.println("    extensionRequest: subjectAltName dNSName " + s.cn + ", subjectKeyIdentifier " + hex(r.ski));
        }
        w.println("  The subjectKeyIdentifier is SHA-1 of the subjectPublicKey BIT STRING value (RFC 5280 §4.2.1.2 (1)).");
        if (s.ident != null) {
            w.println();
            w.println("Identity proof (RFC 5272 §6.2.1, CMC-44):");
            w.println("  shared secret (UTF-8)  = \"" + s.secret + "\"");
            w.println("  identification (UTF-8) = \"" + s.ident + "\"");
            w.println("  key     = SHA-256(secret || identification) = " + hex(r.identityKey));
            w.println("  data    = DER of reqSequence (SEQUENCE tag and length included), " + r.reqSequenceDer.length
                + " bytes, SHA-256 " + hex(sha256(r.reqSequenceDer)));
            w.println("  witness = HMAC-SHA256(key, data) = " + hex(r.witness));
        }
        w.println();
        w.println("Expected server outcome:");
        if (s.badSig) {
            w.println("  The SignerInfo signature is invalid. This file is p10-ec.der (same key, transactionId and");
            w.println("  senderNonce) with the byte at file offset " + r.flippedOffset + " (the last byte of the signature"
                + " value) XORed with 0x01,");
            w.println("  re-encoded with BC's SignedData/SignerInfo classes; every other byte equals p10-ec.der.");
            w.println("  Expect failed(2) + badMessageCheck(1), bodyList [0] (CMC-16), HTTP 4xx with a CMC body (EST-99).");
            w.println("  A server must check the signature before it records the (transactionId, senderNonce) pair:");
            w.println("  posting this file first must not turn a later p10-ec.der into a replay (CMC-53).");
        } else if (s.unknownControl) {
            w.println("  Signature valid. Expect failed(2) + badRequest(2) with bodyList containing " + BP_UNKNOWN
                + " (CMC-9), HTTP 4xx with a CMC body (EST-99).");
        } else {
            w.println("  Signature valid; a certificate for CN=" + s.cn + " with this key, status success (or absent) for"
                + " body part " + BP_REQ + ",");
            w.println("  recipientNonce = the senderNonce above, a fresh senderNonce, the same transactionId and dataReturn."
                + (s.ident != null ? " Needs the server to know identity \"" + s.ident + "\" with the secret above;"
                + " a wrong secret gives badIdentity (7)." : ""));
            w.println("  Posting the same bytes twice within the replay window gives failed + badRequest (CMC-53).");
        }
        w.println();
        w.println("File: " + r.der.length + " bytes, SHA-256 " + hex(sha256(r.der)));
    }

    // ------------------------------------------------------------------------------------------
    // live mode: transport
    // ------------------------------------------------------------------------------------------

    static String url;
    static SSLContext tls;
    static String basic;
    static X509Certificate root;

    static final class Resp {
        int http;
        String contentType;
        byte[] der;
        CMSSignedData sd;
        boolean simple;
        PKIResponse pr;
        List<TaggedAttribute> controls = new ArrayList<>();
        List<CMCStatusInfoV2> statuses = new ArrayList<>();
        List<X509CertificateHolder> certs = new ArrayList<>();
    }

    static byte[] readAll(InputStream in) throws Exception {
        if (in == null) {
            return new byte[0];
        }
        try (InputStream i = in) {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            byte[] buf = new byte[8192];
            int n;
            while ((n = i.read(buf)) > 0) {
                b.write(buf, 0, n);
            }
            return b.toByteArray();
        }
    }

    static String printable(byte[] body) {
        String s = new String(body, 0, Math.min(body.length, 300), StandardCharsets.UTF_8);
        return s.replaceAll("[\\r\\n]+", " ") + (body.length > 300 ? "..." : "");
    }

    /** POST a DER Full PKI Request (base64, RFC 8951) and parse whatever comes back. */
    static Resp post(byte[] der, String what) throws Exception {
        return post(der, what, true);
    }

    /** As post(der, what), with or without the HTTP Basic credentials (an identity proof
     *  request authenticates inside CMC instead). */
    static Resp post(byte[] der, String what, boolean withBasic) throws Exception {
        HttpsURLConnection c = (HttpsURLConnection) new URL(url).openConnection();
        c.setSSLSocketFactory(tls.getSocketFactory());
        c.setConnectTimeout(20000);
        c.setReadTimeout(60000);
        c.setRequestMethod("POST");
        c.setDoOutput(true);
        c.setInstanceFollowRedirects(false);
        c.setRequestProperty("Content-Type", "application/pkcs7-mime; smime-type=CMC-request");
        c.setRequestProperty("Content-Transfer-Encoding", "base64");
        c.setRequestProperty("Accept", "application/pkcs7-mime");
        if (withBasic) {
            c.setRequestProperty("Authorization", basic);
        }
        // 64-column lines with CRLF, as in RFC 7030 App. A (receivers must tolerate it, EST-12).
        byte[] body = Base64.getMimeEncoder(64, new byte[] {'\r', '\n'}).encode(der);
        c.setFixedLengthStreamingMode(body.length);
        Resp r = new Resp();
        try {
            try (OutputStream o = c.getOutputStream()) {
                o.write(body);
            }
            r.http = c.getResponseCode();
        } catch (javax.net.ssl.SSLException e) {
            throw new AssertionError("FAILED: " + what + ": TLS to " + url + " failed (the server certificate must chain"
                + " to ROOT.pem and match the host name): " + e);
        } catch (java.io.IOException e) {
            throw new AssertionError("FAILED: " + what + ": POST " + url + " failed: " + e);
        }
        r.contentType = c.getHeaderField("Content-Type");
        byte[] raw = readAll(r.http < 400 ? c.getInputStream() : c.getErrorStream());
        c.disconnect();
        note(what + ": HTTP " + r.http + ", Content-Type " + r.contentType + ", " + raw.length + " body bytes");
        if (r.http == 401) {
            throw new AssertionError("FAILED: " + what + ": HTTP 401, the server refused " + "the Basic credentials");
        }
        String ct = r.contentType == null ? "" : r.contentType.toLowerCase(Locale.ROOT);
        if (!ct.startsWith("application/pkcs7-mime")) {
            throw new AssertionError("FAILED: " + what + ": expected an application/pkcs7-mime (CMC) body, got HTTP "
                + r.http + " Content-Type " + r.contentType + ": " + printable(raw));
        }
        String b64 = new String(raw, StandardCharsets.US_ASCII).replaceAll("[\\r\\n\\t ]", "");
        try {
            r.der = Base64.getDecoder().decode(b64);
        } catch (IllegalArgumentException e) {
            throw new AssertionError("FAILED: " + what + ": body is not base64 (RFC 8951): " + printable(raw));
        }
        parseResponse(r, what);
        return r;
    }

    // ------------------------------------------------------------------------------------------
    // live mode: response parsing and verification
    // ------------------------------------------------------------------------------------------

    static X509Certificate jca(X509CertificateHolder h) throws Exception {
        return new JcaX509CertificateConverter().setProvider("BC").getCertificate(h);
    }

    /**
     * Build a path from `target` to ROOT.pem using only `pool` (the response's certificates) and validate
     * it with PKIX, revocation off. Returns the path (empty when target is the trust anchor itself).
     */
    static CertPath chainToRoot(X509CertificateHolder target, List<X509CertificateHolder> pool) throws Exception {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        X509Certificate t = jca(target);
        if (Arrays.equals(t.getEncoded(), root.getEncoded())) {
            return cf.generateCertPath(Collections.<X509Certificate>emptyList());
        }
        List<X509Certificate> certs = new ArrayList<>();
        for (X509CertificateHolder h : pool) {
            certs.add(jca(h));
        }
        certs.add(t);
        X509CertSelector sel = new X509CertSelector();
        sel.setCertificate(t);
        PKIXBuilderParameters bp = new PKIXBuilderParameters(Collections.singleton(new TrustAnchor(root, null)), sel);
        bp.setRevocationEnabled(false);
        bp.addCertStore(CertStore.getInstance("Collection", new CollectionCertStoreParameters(certs)));
        CertPath path = ((PKIXCertPathBuilderResult) CertPathBuilder.getInstance("PKIX").build(bp)).getCertPath();
        PKIXParameters vp = new PKIXParameters(Collections.singleton(new TrustAnchor(root, null)));
        vp.setRevocationEnabled(false);
        CertPathValidator.getInstance("PKIX").validate(path, vp);
        return path;
    }

    static void parseResponse(Resp r, String what) throws Exception {
        try {
            r.sd = new CMSSignedData(r.der);
        } catch (Exception e) {
            throw new AssertionError("FAILED: " + what + ": the body is not a CMS SignedData: " + e);
        }
        r.certs.addAll(r.sd.getCertificates().getMatches(null));
        String ctype = r.sd.getSignedContentTypeOID();
        Collection<SignerInformation> signers = r.sd.getSignerInfos().getSigners();
        if (OID_DATA.equals(ctype) && signers.isEmpty()) {
            // Simple PKI Response (CMC-3): certificates only.
            r.simple = true;
            note(what + ": Simple PKI Response with " + r.certs.size() + " certificates");
            return;
        }
        check(OID_PKIRESPONSE.equals(ctype), what + ": eContentType id-cct-PKIResponse"
            + (OID_PKIRESPONSE.equals(ctype) ? "" : " (got " + ctype + ")"));
        check(!signers.isEmpty(), what + ": the Full PKI Response is signed");
        for (SignerInformation si : signers) {
            @SuppressWarnings("unchecked") // SignerId is a raw Selector in BC 1.72
            Collection<X509CertificateHolder> m = r.sd.getCertificates().getMatches(si.getSID());
            check(!m.isEmpty(), what + ": signer certificate is among the SignedData certificates");
            X509CertificateHolder sc = m.iterator().next();
            boolean valid;
            String why = "";
            try {
                valid = si.verify(new JcaSimpleSignerInfoVerifierBuilder().setProvider("BC").build(sc));
            } catch (org.bouncycastle.cms.CMSException e) {
                // e.g. CMSSignerDigestMismatchException, or the signer certificate not valid at signingTime
                valid = false;
                why = ": " + e;
            }
            check(valid, what + ": response signature verifies (signer " + sc.getSubject() + ")" + why);
            CertPath p;
            try {
                p = chainToRoot(sc, r.certs);
            } catch (Exception e) {
                throw new AssertionError("FAILED: " + what + ": signer certificate " + sc.getSubject()
                    + " does not chain to ROOT.pem: " + e);
            }
            check(true, what + ": signer certificate chains to ROOT.pem (path length " + p.getCertificates().size() + ")");
            List<String> eku = jca(sc).getExtendedKeyUsage();
            note(what + ": signer EKU " + eku + (eku != null && (eku.contains("1.3.6.1.5.5.7.3.27")
                || eku.contains("1.3.6.1.5.5.7.3.28")) ? " (cmcCA/cmcRA, CMC-28)" : " (no cmcCA/cmcRA EKU: CMC-28 SHOULD)"));
        }
        r.pr = PKIResponse.getInstance(ASN1Primitive.fromByteArray((byte[]) r.sd.getSignedContent().getContent()));
        for (ASN1Encodable e : r.pr.getControlSequence()) {
            TaggedAttribute a = TaggedAttribute.getInstance(e);
            r.controls.add(a);
            if (a.getAttrType().equals(CMCObjectIdentifiers.id_cmc_statusInfoV2)) {
                for (ASN1Encodable v : a.getAttrValues()) {
                    CMCStatusInfoV2 st = CMCStatusInfoV2.getInstance(v);
                    r.statuses.add(st);
                    note(what + ": statusInfoV2 " + describe(st));
                }
            } else if (a.getAttrType().equals(CMCObjectIdentifiers.id_cmc_statusInfo)) {
                note(what + ": (also a v1 CMCStatusInfo control)");
            }
        }
        note(what + ": " + r.controls.size() + " controls, " + r.pr.getCmsSequence().size() + " cmsSequence, "
            + r.certs.size() + " certificates");
    }

    static int status(CMCStatusInfoV2 st) {
        return ASN1Integer.getInstance(st.getcMCStatus().toASN1Primitive()).intValueExact();
    }

    /** The failInfo value, or -1 when otherInfo is absent or not a failInfo. */
    static int failInfo(CMCStatusInfoV2 st) {
        OtherStatusInfo o = st.getOtherStatusInfo();
        if (o == null || !o.isFailInfo()) {
            return -1;
        }
        return ASN1Integer.getInstance(o.toASN1Primitive()).intValueExact();
    }

    /** Body part IDs of bodyList; a BodyPartPath is given as its last element, negated - 1 (never matches). */
    static List<Long> bodyList(CMCStatusInfoV2 st) {
        List<Long> out = new ArrayList<>();
        ASN1Sequence seq = ASN1Sequence.getInstance(ASN1Sequence.getInstance(st).getObjectAt(1));
        for (ASN1Encodable e : seq) {
            BodyPartReference ref = BodyPartReference.getInstance(e);
            if (ref.isBodyPartID()) {
                out.add(ref.getBodyPartID().getID());
            } else {
                BodyPartID[] p = ref.getBodyPartPath().getBodyPartIDs();
                out.add(-1 - p[p.length - 1].getID());
            }
        }
        return out;
    }

    static final String[] STATUS = {"success", "reserved", "failed", "pending", "noSupport", "confirmRequired",
        "popRequired", "partial"};
    static final String[] FAIL = {"badAlg", "badMessageCheck", "badRequest", "badTime", "badCertId", "unsupportedExt",
        "mustArchiveKeys", "badIdentity", "popRequired", "popFailed", "noKeyReuse", "internalCAError", "tryLater",
        "authDataFail"};

    static String describe(CMCStatusInfoV2 st) {
        int s = status(st);
        StringBuilder b = new StringBuilder();
        b.append(s >= 0 && s < STATUS.length ? STATUS[s] : "?").append('(').append(s).append(')');
        int f = failInfo(st);
        if (f >= 0) {
            b.append(" failInfo ").append(f < FAIL.length ? FAIL[f] : "?").append('(').append(f).append(')');
        } else if (st.getOtherStatusInfo() != null) {
            b.append(st.getOtherStatusInfo().isPendingInfo() ? " pendInfo" : " extendedFailInfo");
        }
        b.append(" bodyList ").append(bodyList(st));
        ASN1UTF8String text = st.getStatusStringUTF8();
        if (text != null) {
            b.append(" statusString \"").append(text.getString()).append('"');
        }
        return b.toString();
    }

    static List<ASN1Encodable> controlValues(Resp r, ASN1ObjectIdentifier type) {
        List<ASN1Encodable> out = new ArrayList<>();
        for (TaggedAttribute a : r.controls) {
            if (a.getAttrType().equals(type)) {
                for (ASN1Encodable v : a.getAttrValues()) {
                    out.add(v);
                }
            }
        }
        return out;
    }

    static ASN1Encodable single(Resp r, ASN1ObjectIdentifier type, String name, String what) {
        List<ASN1Encodable> v = controlValues(r, type);
        check(v.size() == 1, what + ": exactly one " + name + " control in the response (got " + v.size() + ")");
        return v.get(0);
    }

    static String failures(Resp r) {
        StringBuilder b = new StringBuilder();
        for (CMCStatusInfoV2 st : r.statuses) {
            if (status(st) != 0) {
                b.append(b.length() > 0 ? "; " : "").append(describe(st));
            }
        }
        return b.toString();
    }

    // ------------------------------------------------------------------------------------------
    // live mode: expectations
    // ------------------------------------------------------------------------------------------

    static void expectIssued(Req q, Resp r) throws Exception {
        String w = q.spec.name;
        check(r.http == 200, w + ": HTTP 200" + (r.http != 200 ? " (got " + r.http + "; " + failures(r) + ")" : ""));
        check(r.contentType.toLowerCase(Locale.ROOT).startsWith("application/pkcs7-mime"),
            w + ": Content-Type " + r.contentType);
        check(!r.simple, w + ": a Full PKI Response (a Simple one cannot carry recipientNonce/dataReturn, CMC-51/54)");
        for (CMCStatusInfoV2 st : r.statuses) {
            check(status(st) == 0, w + ": status " + describe(st) + " is success");
        }
        boolean covered = false;
        for (CMCStatusInfoV2 st : r.statuses) {
            covered |= bodyList(st).contains(q.bodyPart);
        }
        check(true, w + ": body part " + q.bodyPart + (covered ? " has status success" : " has no status (= success, CMC-40)"));
        expectEchoes(q, r, w);
        expectCertificate(q, r, w);
    }

    /** transactionId, recipientNonce, a fresh senderNonce and (when sent) dataReturn (CMC-50, CMC-51, CMC-54). */
    static void expectEchoes(Req q, Resp r, String w) throws Exception {
        byte[] rn = ASN1OctetString.getInstance(single(r, CMCObjectIdentifiers.id_cmc_recipientNonce, "recipientNonce", w))
            .getOctets();
        check(Arrays.equals(rn, q.senderNonce), w + ": recipientNonce equals our senderNonce (CMC-51)");
        byte[] sn = ASN1OctetString.getInstance(single(r, CMCObjectIdentifiers.id_cmc_senderNonce, "senderNonce", w))
            .getOctets();
        check(sn.length >= 16 && !Arrays.equals(sn, q.senderNonce),
            w + ": a fresh senderNonce of " + sn.length + " bytes (CMC-51, CMC-53)");
        BigInteger tx = ASN1Integer.getInstance(single(r, CMCObjectIdentifiers.id_cmc_transactionId, "transactionId", w))
            .getValue();
        check(tx.equals(q.transactionId), w + ": transactionId echoed (CMC-50)");
        if (q.dataReturn != null) {
            byte[] dr = ASN1OctetString.getInstance(single(r, CMCObjectIdentifiers.id_cmc_dataReturn, "dataReturn", w))
                .getOctets();
            check(Arrays.equals(dr, q.dataReturn), w + ": dataReturn echoed (CMC-54)");
        } else {
            check(controlValues(r, CMCObjectIdentifiers.id_cmc_dataReturn).isEmpty(),
                w + ": no dataReturn in the response (none was sent)");
        }
    }

    /** The certificate for q's key, with its issuer, chaining to ROOT.pem (CMC-26, CMC-27). */
    static X509CertificateHolder expectCertificate(Req q, Resp r, String w) throws Exception {
        byte[] spki = q.kp.getPublic().getEncoded();
        X509CertificateHolder issued = null;
        for (X509CertificateHolder h : r.certs) {
            if (Arrays.equals(h.getSubjectPublicKeyInfo().getEncoded(ASN1Encoding.DER), spki)) {
                issued = h;
            }
        }
        check(issued != null, w + ": a certificate for the request key is in certificates (CMC-26)");
        check(issued.getSubject().equals(q.subject), w + ": subject " + issued.getSubject());
        X509Certificate x = jca(issued);
        x.checkValidity();
        check(true, w + ": certificate is valid now (serial " + issued.getSerialNumber().toString(16) + ")");
        X509CertificateHolder issuer = null;
        for (X509CertificateHolder h : r.certs) {
            if (h != issued && h.getSubject().equals(issued.getIssuer())) {
                try {
                    x.verify(jca(h).getPublicKey());
                    issuer = h;
                } catch (Exception e) {
                    // same name, other key: keep looking
                }
            }
        }
        boolean rootIssued = issued.getIssuer().equals(X500Name.getInstance(root.getSubjectX500Principal().getEncoded()));
        check(issuer != null || rootIssued, w + ": the issuing CA certificate is in the response (CMC-27)"
            + (issuer == null ? " (issued directly by ROOT.pem)" : ""));
        CertPath p;
        try {
            p = chainToRoot(issued, r.certs);
        } catch (Exception e) {
            throw new AssertionError("FAILED: " + w + ": issued certificate does not chain to ROOT.pem"
                + " with the response's certificates: " + e);
        }
        check(true, w + ": issued certificate chains to ROOT.pem (path length " + p.getCertificates().size() + ")");
        byte[] san = x.getExtensionValue(Extension.subjectAlternativeName.getId());
        note(w + ": subjectAltName " + (san == null ? "absent" : "present") + " (requested dNSName " + q.spec.cn
            + "; CMC-15 lets the CA modify it)");
        return issued;
    }

    /**
     * A CMC-level rejection: 4xx, a signed Full PKI Response, failed + failInfo, and the bodyList rule
     * (bodyPart null: any bodyList; exactly: bodyList is [bodyPart]; else bodyList contains bodyPart).
     */
    static void expectFailed(String w, Resp r, int fail, Long bodyPart, boolean exactly) {
        check(r.http >= 400 && r.http < 500, w + ": HTTP 4xx (got " + r.http + ", EST-99)");
        check(!r.simple && r.pr != null, w + ": a Full PKI Response in the error body (EST-99)");
        CMCStatusInfoV2 hit = null;
        for (CMCStatusInfoV2 st : r.statuses) {
            List<Long> bl = bodyList(st);
            boolean listOk = bodyPart == null
                || (exactly ? bl.equals(Collections.singletonList(bodyPart)) : bl.contains(bodyPart));
            if (status(st) == 2 && failInfo(st) == fail && listOk) {
                hit = st;
            }
        }
        check(hit != null, w + ": CMCStatusInfoV2 failed(2) + " + FAIL[fail] + "(" + fail + ")"
            + (bodyPart == null ? "" : exactly ? " with bodyList = [" + bodyPart + "]" : " with bodyList containing " + bodyPart)
            + (hit == null ? " (got: " + (r.statuses.isEmpty() ? "no statusInfoV2" : failures(r)) + ")" : ""));
    }

    /** The pendInfo of a status, or null. */
    static PendInfo pendInfo(CMCStatusInfoV2 st) {
        OtherStatusInfo o = st.getOtherStatusInfo();
        if (o == null || !o.isPendingInfo()) {
            return null;
        }
        return PendInfo.getInstance(o.toASN1Primitive());
    }

    /**
     * A pending answer (EST-100, CMC-64): HTTP 200, a signed Full PKI Response, CMCStatusInfoV2 pending(3)
     * with bodyList = [q.bodyPart] and otherInfo pendInfo (8-byte pendToken, pendTime), no failure,
     * the nonces and transactionId echoed, and no certificate for the held key.
     */
    static PendInfo expectPending(Req q, Resp r) throws Exception {
        String w = q.spec.name;
        check(r.http == 200, w + ": HTTP 200 (EST-100: pending is in-band)" + (r.http != 200 ? " (got " + r.http + "; "
            + failures(r) + ")" : ""));
        check(r.contentType.toLowerCase(Locale.ROOT).startsWith("application/pkcs7-mime"),
            w + ": Content-Type " + r.contentType);
        check(!r.simple && r.pr != null, w + ": a Full PKI Response");
        CMCStatusInfoV2 hit = null;
        for (CMCStatusInfoV2 st : r.statuses) {
            check(status(st) != 2, w + ": no failed status (" + describe(st) + ")");
            if (status(st) == 3 && bodyList(st).equals(Collections.singletonList(q.bodyPart))) {
                hit = st;
            }
        }
        check(hit != null, w + ": CMCStatusInfoV2 pending(3) with bodyList = [" + q.bodyPart + "]"
            + (hit == null ? " (got: " + (r.statuses.isEmpty() ? "no statusInfoV2" : failures(r)) + ")" : ""));
        PendInfo p = pendInfo(hit);
        check(p != null, w + ": otherInfo is pendInfo (CMC-38)");
        check(p.getPendToken().length == 8, w + ": pendToken " + hex(p.getPendToken()) + " is 8 bytes");
        java.util.Date when = p.getPendTime().getDate();
        check(true, w + ": pendTime " + p.getPendTime().getTimeString() + " (" + when.toInstant() + ")");
        expectEchoes(q, r, w);
        byte[] spki = q.kp.getPublic().getEncoded();
        boolean certForKey = false;
        for (X509CertificateHolder h : r.certs) {
            certForKey |= Arrays.equals(h.getSubjectPublicKeyInfo().getEncoded(ASN1Encoding.DER), spki);
        }
        check(!certForKey, w + ": no certificate for the held key yet");
        return p;
    }

    static boolean samePendInfo(PendInfo a, PendInfo b) throws Exception {
        return Arrays.equals(a.getPendToken(), b.getPendToken())
            && Arrays.equals(a.getPendTime().getEncoded(ASN1Encoding.DER), b.getPendTime().getEncoded(ASN1Encoding.DER));
    }

    // ------------------------------------------------------------------------------------------
    // pending-start / pending-finish: the state in between (a text file)
    //   PENDTOKEN <hex>, PENDTIME <GeneralizedTime>, SKI <hex>, then the key as PKCS#8 and SPKI PEM.
    // ------------------------------------------------------------------------------------------

    static void writeState(File f, Req q, PendInfo p) throws Exception {
        try (FileWriter fw = new FileWriter(f); JcaPEMWriter w = new JcaPEMWriter(fw)) {
            fw.write("# CmcInterop pending-start state: the held request (CN=" + CN_PENDING + ") and its key\n");
            fw.write("PENDTOKEN " + hex(p.getPendToken()) + "\n");
            fw.write("PENDTIME " + p.getPendTime().getTimeString() + "\n");
            fw.write("SKI " + hex(q.ski) + "\n");
            fw.flush();
            w.writeObject(new JcaPKCS8Generator(q.kp.getPrivate(), null));
            w.writeObject(q.kp.getPublic());
        }
    }

    static final class State {
        byte[] pendToken;
        String pendTime;
        byte[] ski;
        KeyPair kp;
    }

    static State readState(File f) throws Exception {
        State s = new State();
        for (String line : java.nio.file.Files.readAllLines(f.toPath(), StandardCharsets.UTF_8)) {
            if (line.startsWith("PENDTOKEN ")) {
                s.pendToken = Hex.decode(line.substring(10).trim());
            } else if (line.startsWith("PENDTIME ")) {
                s.pendTime = line.substring(9).trim();
            } else if (line.startsWith("SKI ")) {
                s.ski = Hex.decode(line.substring(4).trim());
            }
        }
        java.security.PrivateKey priv = null;
        java.security.PublicKey pub = null;
        JcaPEMKeyConverter conv = new JcaPEMKeyConverter().setProvider("BC");
        try (PEMParser pp = new PEMParser(new java.io.FileReader(f))) {
            Object o;
            while ((o = pp.readObject()) != null) {
                if (o instanceof PrivateKeyInfo) {
                    priv = conv.getPrivateKey((PrivateKeyInfo) o);
                } else if (o instanceof SubjectPublicKeyInfo) {
                    pub = conv.getPublicKey((SubjectPublicKeyInfo) o);
                }
            }
        }
        if (s.pendToken == null || s.ski == null || priv == null || pub == null) {
            throw new AssertionError("FAILED: " + f + " is not a pending-start state file");
        }
        s.kp = new KeyPair(pub, priv);
        byte[] ski = new JcaX509ExtensionUtils().createSubjectKeyIdentifier(pub).getKeyIdentifier();
        check(Arrays.equals(ski, s.ski), "state file: SKI " + hex(s.ski) + " is the held key's");
        return s;
    }

    /** The pending label: EST_PENDING_LABEL, default "manual". */
    static String pendingLabel() {
        String l = System.getenv("EST_PENDING_LABEL");
        return l == null || l.isEmpty() ? "manual" : l;
    }

    /**
     * pending-start: a PKCS#10 request (CN=bc-cmc-pending.example) is held: pending(3) + pendInfo; a
     * Query Pending at once is pending again with the same pendInfo (CMC-64). Writes STATEFILE.
     */
    static void pendingStart(String server, String rootPem, String user, String password, File state)
        throws Exception {
        connect(server, rootPem, user, password, pendingLabel());
        Req q = build(new Spec("pending", "EC", CN_PENDING));
        PendInfo first = expectPending(q, post(q.der, q.spec.name));
        writeState(state, q, first);
        note("wrote " + state);
        System.out.println("PENDTOKEN " + hex(first.getPendToken()));
        Req qq = buildQuery("query-pending-before-approval", q.kp, q.subject, first.getPendToken());
        PendInfo again = expectPending(qq, post(qq.der, qq.spec.name));
        check(samePendInfo(first, again), "query-pending-before-approval: pendInfo equals the original (same pendToken"
            + " and pendTime, CMC-64)");
    }

    /**
     * pending-finish: after approval, the Query Pending returns success for its bodyPartID and the
     * certificate for the held key; a Query Pending with an unknown pendToken is refused with badRequest.
     */
    static void pendingFinish(String server, String rootPem, String user, String password, File state)
        throws Exception {
        connect(server, rootPem, user, password, pendingLabel());
        State st = readState(state);
        note("held request: pendToken " + hex(st.pendToken) + ", pendTime " + st.pendTime);
        Req qq = buildQuery("query-pending-after-approval", st.kp, new X500Name("CN=" + CN_PENDING), st.pendToken);
        Resp r = post(qq.der, qq.spec.name);
        expectIssued(qq, r);
        boolean ok = false;
        for (CMCStatusInfoV2 s : r.statuses) {
            ok |= status(s) == 0 && bodyList(s).contains(BP_QUERY);
        }
        check(ok, qq.spec.name + ": a success(0) status whose bodyList has the queryPending bodyPartID " + BP_QUERY
            + (ok ? "" : " (got: " + r.statuses.size() + " statuses)"));

        byte[] unknown;
        do {
            unknown = randomToken();
        } while (Arrays.equals(unknown, st.pendToken));
        Req bad = buildQuery("query-pending-unknown-token", st.kp, new X500Name("CN=" + CN_PENDING), unknown);
        expectFailed(bad.spec.name + " " + hex(unknown), post(bad.der, bad.spec.name), 2, BP_QUERY, true);
    }

    /** TLS trusting only ROOT.pem, Basic credentials, and the /fullcmc URL of `label` (null: the default CA). */
    static void connect(String server, String rootPem, String user, String password, String label) throws Exception {
        try (FileInputStream in = new FileInputStream(rootPem)) {
            root = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
        KeyStore ts = KeyStore.getInstance(KeyStore.getDefaultType());
        ts.load(null, null);
        ts.setCertificateEntry("root", root);
        TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
        tmf.init(ts);
        tls = SSLContext.getInstance("TLS");
        tls.init(null, tmf.getTrustManagers(), RNG);
        url = "https://" + server + "/.well-known/est" + (label == null || label.isEmpty() ? "" : "/" + label) + "/fullcmc";
        basic = "Basic " + Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
        System.out.println("posting to " + url);
    }

    static void live(String server, String rootPem, String user, String password, String ident, String secret)
        throws Exception {
        connect(server, rootPem, user, password, System.getenv("EST_LABEL"));

        // Fresh requests (keys, nonces, transaction IDs) from the same builders as gen mode.
        Spec[] specs = genSpecs(secret != null ? secret : DEFAULT_SECRET);
        Req first = null;
        for (Spec s : specs) {
            if (s.ident != null) {
                if (ident == null) {
                    System.out.println("skip: " + s.name + " (no IDENT SECRET given)");
                    continue;
                }
                s.ident = ident;
                s.secret = secret;
            }
            Req q = build(s);
            // The identity-proof request carries no HTTP credentials: CMC authenticates it.
            Resp r = post(q.der, s.name, s.ident == null);
            if (s.badSig) {
                expectFailed(s.name, r, 1, 0L, true);                 // CMC-16
            } else if (s.unknownControl) {
                expectFailed(s.name, r, 2, BP_UNKNOWN, false);       // CMC-9
            } else {
                expectIssued(q, r);
                if (first == null) {
                    first = q;
                }
            }
        }
        // A wrong shared secret without HTTP credentials: badIdentity (7), nothing issued.
        if (ident != null) {
            for (Spec s : genSpecs(secret)) {
                if (s.ident == null) {
                    continue;
                }
                s.ident = ident;
                s.secret = secret + "-wrong";
                Req q = build(s);
                expectFailed("identity proof with a wrong secret", post(q.der, "wrong secret", false), 7, null, false);
                break;
            }
            // CMC-18: AuthenticatedData(PKIData) under the shared secret, no SignedData, no HTTP credentials.
            Req a = build(authDataSpec(ident, secret));
            selfCheckAuth(a);
            expectIssued(a, post(a.der, a.spec.name, false));
            // The same with a wrong secret: the MAC fails, badMessageCheck on the whole message.
            Spec wrong = authDataSpec("authdata-wrong-secret", ident, secret + "-wrong");
            Req aw = build(wrong);
            expectFailed(wrong.name, post(aw.der, wrong.name, false), 1, 0L, true);
        }
        if (ident != null) {
            encryptedPop(ident, secret);
        }
        // CMC-53: the identical p10-ec bytes again (same transactionId + senderNonce).
        Resp replay = post(first.der, "replay of " + first.spec.name);
        expectFailed("replay of " + first.spec.name, replay, 2, null, false);
    }

    /**
     * CMC-67 (RFC 5272 §6.7): an RSA key that proves possession by decryption. A CRMF request whose
     * POP is keyEncipherment subsequentMessage challengeResp (BC's builder), in AuthenticatedData
     * under the shared secret, gets popRequired with an Encrypted POP; BC decrypts its EnvelopedData
     * (ktri) with the private key, checks the witness, computes the Decrypted POP
     * (HMAC-SHA256, key = the POP value, data = the DER CertReqMsg) and sends the request again; the
     * answer carries the certificate. A Decrypted POP with one bit changed is refused with popFailed.
     */
    static void encryptedPop(String ident, String secret) throws Exception {
        String w = "encrypted-pop-rsa";
        Req q = new Req();
        q.spec = new Spec(w, "RSA", "bc-cmc-encpop.example");
        q.kp = keyPair("RSA");
        q.subject = new X500Name("CN=" + q.spec.cn);
        q.transactionId = new BigInteger(63, RNG).add(BigInteger.ONE);
        q.senderNonce = new byte[16];
        RNG.nextBytes(q.senderNonce);
        CertificateRequestMessageBuilder b = new CertificateRequestMessageBuilder(BigInteger.valueOf(BP_REQ));
        b.setSubject(q.subject);
        b.setPublicKey(SubjectPublicKeyInfo.getInstance(q.kp.getPublic().getEncoded()));
        b.setProofOfPossessionSubsequentMessage(org.bouncycastle.asn1.crmf.SubsequentMessage.challengeResp);
        TaggedRequest tr = new TaggedRequest(b.build().toASN1Structure());
        check(CertReqMsg.getInstance(tr.getValue()).getPopo().getType() == ProofOfPossession.TYPE_KEY_ENCIPHERMENT,
            w + ": BC built a keyEncipherment POP");
        List<TaggedAttribute> controls = new ArrayList<>();
        controls.add(control(BP_TXID, CMCObjectIdentifiers.id_cmc_transactionId, new ASN1Integer(q.transactionId)));
        controls.add(control(BP_SNONCE, CMCObjectIdentifiers.id_cmc_senderNonce, new DEROctetString(q.senderNonce)));
        controls.add(control(BP_IDENT, CMCObjectIdentifiers.id_cmc_identification, new DERUTF8String(ident)));
        byte[] first = authenticate(new PKIData(controls.toArray(new TaggedAttribute[0]), new TaggedRequest[] {tr},
            new TaggedContentInfo[0], new OtherMsg[0]).getEncoded(ASN1Encoding.DER), ident, secret);
        Resp r = post(first, w + " (round 1)", false);
        check(r.http == 200, w + ": popRequired is answered with HTTP 200 (got " + r.http + "; " + failures(r) + ")");
        boolean popRequired = false;
        for (CMCStatusInfoV2 st : r.statuses) {
            popRequired |= status(st) == 6 && bodyList(st).contains(BP_REQ);
        }
        check(popRequired, w + ": status popRequired for body part " + BP_REQ);
        check(r.certs.stream().noneMatch(h -> h.getSubject().equals(q.subject)), w + ": nothing issued yet");
        expectEchoes(q, r, w + " (round 1)");
        org.bouncycastle.asn1.cmc.EncryptedPOP ep = org.bouncycastle.asn1.cmc.EncryptedPOP.getInstance(
            single(r, CMCObjectIdentifiers.id_cmc_encryptedPOP, "encryptedPOP", w));
        // Step 3: decrypt with BC's CMS (ktri), check the witness.
        org.bouncycastle.cms.CMSEnvelopedData env = new org.bouncycastle.cms.CMSEnvelopedData(
            ep.getCms().getEncoded(ASN1Encoding.DER));
        org.bouncycastle.cms.RecipientInformation ri = env.getRecipientInfos().getRecipients().iterator().next();
        byte[] y = ri.getContent(new org.bouncycastle.cms.jcajce.JceKeyTransEnvelopedRecipient(q.kp.getPrivate())
            .setProvider("BC"));
        check(ep.getWitnessAlgID().getAlgorithm().equals(NISTObjectIdentifiers.id_sha256), w + ": witness SHA-256");
        check(Arrays.equals(sha256(y), ep.getWitness()), w + ": the decrypted POP value matches the witness");
        check(ep.getThePOPAlgID().getAlgorithm().equals(PKCSObjectIdentifiers.id_hmacWithSHA256),
            w + ": thePOPAlgID hmacWithSHA256");
        check(Arrays.equals(ep.getRequest().getEncoded(ASN1Encoding.DER), tr.getEncoded(ASN1Encoding.DER)),
            w + ": the Encrypted POP carries our request unchanged");
        // Step 4: HMAC(key = first 64 bytes of the value, data = the certification request).
        byte[] key = Arrays.copyOf(y, Math.min(y.length, 64));
        byte[] pop = hmacSha256(key, CertReqMsg.getInstance(ep.getRequest().getValue()).getEncoded(ASN1Encoding.DER));
        byte[] serverNonce = ASN1OctetString.getInstance(
            single(r, CMCObjectIdentifiers.id_cmc_senderNonce, "senderNonce", w)).getOctets();
        for (boolean tamper : new boolean[] {true, false}) {
            byte[] thePop = pop.clone();
            if (tamper) {
                thePop[0] ^= 1;
            }
            q.senderNonce = new byte[16];
            RNG.nextBytes(q.senderNonce);
            List<TaggedAttribute> c2 = new ArrayList<>();
            c2.add(control(BP_TXID, CMCObjectIdentifiers.id_cmc_transactionId, new ASN1Integer(q.transactionId)));
            c2.add(control(BP_SNONCE, CMCObjectIdentifiers.id_cmc_senderNonce, new DEROctetString(q.senderNonce)));
            c2.add(control(8, CMCObjectIdentifiers.id_cmc_recipientNonce, new DEROctetString(serverNonce)));
            c2.add(control(BP_IDENT, CMCObjectIdentifiers.id_cmc_identification, new DERUTF8String(ident)));
            c2.add(control(10, CMCObjectIdentifiers.id_cmc_decryptedPOP, new org.bouncycastle.asn1.cmc.DecryptedPOP(
                new BodyPartID(BP_REQ), ep.getThePOPAlgID(), thePop)));
            c2.add(control(11, CMCObjectIdentifiers.id_cmc_encryptedPOP, ep));
            byte[] second = authenticate(new PKIData(c2.toArray(new TaggedAttribute[0]),
                new TaggedRequest[] {ep.getRequest()}, new TaggedContentInfo[0], new OtherMsg[0])
                .getEncoded(ASN1Encoding.DER), ident, secret);
            Resp r2 = post(second, w + (tamper ? " (a wrong Decrypted POP)" : " (round 2)"), false);
            if (tamper) {
                expectFailed(w + " with a wrong Decrypted POP", r2, 9, BP_REQ, false); // popFailed (9)
            } else {
                expectIssued(q, r2);
            }
        }
    }

    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        String mode = args.length > 0 ? args[0] : "";
        boolean gen = args.length == 2 && mode.equals("gen");
        boolean genExtra = args.length == 2 && mode.equals("gen-extra");
        boolean pending = args.length == 6 && (mode.equals("pending-start") || mode.equals("pending-finish"));
        boolean named = mode.equals("gen") || mode.equals("gen-extra") || mode.startsWith("pending-");
        if (!gen && !genExtra && !pending && (named || (args.length != 4 && args.length != 6))) {
            System.err.println("usage: CmcInterop gen OUTDIR\n"
                + "       CmcInterop gen-extra OUTDIR\n"
                + "       CmcInterop HOST:PORT ROOT.pem USER PASSWORD [IDENT SECRET]\n"
                + "       CmcInterop pending-start HOST:PORT ROOT.pem USER PASSWORD STATEFILE\n"
                + "       CmcInterop pending-finish HOST:PORT ROOT.pem USER PASSWORD STATEFILE");
            System.exit(2);
        }
        try {
            if (gen) {
                gen(new File(args[1]));
            } else if (genExtra) {
                genExtra(new File(args[1]));
            } else if (mode.equals("pending-start")) {
                pendingStart(args[1], args[2], args[3], args[4], new File(args[5]));
            } else if (mode.equals("pending-finish")) {
                pendingFinish(args[1], args[2], args[3], args[4], new File(args[5]));
            } else {
                live(args[0], args[1], args[2], args[3], args.length == 6 ? args[4] : null,
                    args.length == 6 ? args[5] : null);
            }
        } catch (AssertionError e) {
            System.out.println(e.getMessage());
            System.out.println("FAILED after " + checks + " checks");
            System.exit(1);
        } catch (Throwable t) {
            StringWriter sw = new StringWriter();
            t.printStackTrace(new PrintWriter(sw));
            System.out.println(sw);
            System.out.println("FAILED after " + checks + " checks: " + t);
            System.exit(1);
        }
        System.out.println("ALL OK (" + checks + " checks)");
    }
}
