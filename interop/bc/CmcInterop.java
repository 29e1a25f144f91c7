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
import org.bouncycastle.cms.CMSProcessableByteArray;
import org.bouncycastle.cms.CMSSignedData;
import org.bouncycastle.cms.CMSSignedDataGenerator;
import org.bouncycastle.cms.SignerInformation;
import org.bouncycastle.cms.jcajce.JcaSignerInfoGeneratorBuilder;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoVerifierBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
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
    /** Body part IDs shared by every request built here. */
    static final long BP_TXID = 1, BP_SNONCE = 2, BP_DATARETURN = 3, BP_REQ = 4, BP_IDENT = 5, BP_IDPROOF = 6,
        BP_UNKNOWN = 9;

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
        byte[] der;             // DER ContentInfo(SignedData(PKIData))
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
        // The witness covers reqSequence exactly as it is encoded inside PKIData.
        byte[] inPkiData = ASN1Sequence.getInstance(pkiDataDer).getObjectAt(1).toASN1Primitive()
            .getEncoded(ASN1Encoding.DER);
        if (!Arrays.equals(inPkiData, r.reqSequenceDer)) {
            throw new IllegalStateException("reqSequence DER differs inside PKIData");
        }

        CMSSignedDataGenerator gen = new CMSSignedDataGenerator();
        gen.addSignerInfoGenerator(
            new JcaSignerInfoGeneratorBuilder(new JcaDigestCalculatorProviderBuilder().setProvider("BC").build())
                .build(signer(r), r.ski)); // sid = subjectKeyIdentifier (CMC-17)
        CMSSignedData sd = gen.generate(new CMSProcessableByteArray(CMCObjectIdentifiers.id_cct_PKIData, pkiDataDer),
            true);
        // BC writes BER (indefinite lengths, constructed OCTET STRING); re-encode as DER.
        r.der = sd.toASN1Structure().getEncoded(ASN1Encoding.DER);

        if (s.badSig) {
            r.der = flipSignature(r);
        }
        return r;
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
            covered |= bodyList(st).contains(BP_REQ);
        }
        check(true, w + ": body part " + BP_REQ + (covered ? " has status success" : " has no status (= success, CMC-40)"));

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
        byte[] dr = ASN1OctetString.getInstance(single(r, CMCObjectIdentifiers.id_cmc_dataReturn, "dataReturn", w))
            .getOctets();
        check(Arrays.equals(dr, q.dataReturn), w + ": dataReturn echoed (CMC-54)");

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

    static void live(String server, String rootPem, String user, String password, String ident, String secret)
        throws Exception {
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
        String label = System.getenv("EST_LABEL");
        url = "https://" + server + "/.well-known/est" + (label == null || label.isEmpty() ? "" : "/" + label) + "/fullcmc";
        basic = "Basic " + Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
        System.out.println("posting to " + url);

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
        }
        // CMC-53: the identical p10-ec bytes again (same transactionId + senderNonce).
        Resp replay = post(first.der, "replay of " + first.spec.name);
        expectFailed("replay of " + first.spec.name, replay, 2, null, false);
    }

    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        boolean gen = args.length == 2 && args[0].equals("gen");
        if (!gen && args.length != 4 && args.length != 6) {
            System.err.println("usage: CmcInterop gen OUTDIR\n"
                + "       CmcInterop HOST:PORT ROOT.pem USER PASSWORD [IDENT SECRET]");
            System.exit(2);
        }
        try {
            if (gen) {
                gen(new File(args[1]));
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
