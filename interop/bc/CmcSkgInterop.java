// Bouncy Castle interop for CMC server-side key generation (draft-turner-cmc-serverkeygeneration-02)
// against Estuary's /fullcmc.
//
// Independent of Estuary's code: every request is built, and every response parsed and verified, with Bouncy
// Castle 1.72's ASN.1 (org.bouncycastle.asn1.*, including asn1.cmc and asn1.cms), CMS (org.bouncycastle.cms.*)
// and PKCS (org.bouncycastle.pkcs.*) classes and the JDK. The draft has no BC classes: its types
// (ServerKeyGenRequest, ShroudWithPublicKey, ServerKeyGenResponse, ErrorList) are written here from its ASN.1
// module, which has no tagging default, so certIdentifier [1] and bareKey [2] are EXPLICIT. Its OIDs are
// unassigned; the defaults are Estuary's, under arc A = 2.25.35258263107720737511850855134089286928
// (EST_SKG_ARC overrides): id-cmc-serverKeyGenRequest A.1.1, id-cmc-serverKeyGenResponse A.1.2,
// id-alg-shroudWithPublicKey A.2.1, id-alg-shroudWithSharedSecret A.2.2, id-cet-serverKeyGen A.3.1.
//
// Usage:
//   java -cp bcprov.jar:bcpkix.jar:bcutil.jar:bctls.jar:. CmcSkgInterop HOST:PORT ROOT.pem USER PASSWORD \
//       IDENT IDENT_SECRET SHROUD_NAME SHROUD_SECRET OTHER_NAME
//   Client certificates are enrolled first on https://HOST:PORT/.well-known/est/fullcmc with HTTP Basic USER
//   PASSWORD (PKCS#10 in SignedData signed by the request key): an EC P-256 one (KeyUsage keyAgreement) and an
//   RSA-2048 one (keyEncipherment). Key generation then runs on the label $EST_SKG_LABEL (default "demo"),
//   with no HTTP credentials: the CMC layer authenticates each request.
//     a. shroud-certificate   ShroudWithPublicKey certificate = the EC client certificate (kari); SignedData
//                             signed by that certificate; a P-256 key.
//     b. shroud-cert-id       certIdentifier [1] issuerAndSerialNumber of the signing RSA certificate (ktri,
//                             RSAES-OAEP); an RSA key.
//     c. shroud-bare-key      bareKey [2] { SPKI of a fresh P-256 key, ski }: kari with rKeyId = ski; a P-256 key.
//     d. shroud-shared-secret ShroudWithSharedSecret SHROUD_NAME in AuthenticatedData (pwri, password = UTF-8
//                             IDENT || IDENT_SECRET) with Identification IDENT: the key in pwri under
//                             SHROUD_SECRET. Both secrets are linked to CN=bc-skg-pwri.example.
//     e. archive-key          archiveKey DEFAULT TRUE (absent), and explicitly TRUE: failed, extendedFailInfo
//                             { id-cet-serverKeyGen, archiveNotSupported(1) } plus badRequest for body part 20.
//     f. bad-shared-secret    ShroudWithSharedSecret OTHER_NAME (a secret of another subject): badSharedSecret(3).
//     g. bad-cert-id          certIdentifier naming no certificate of the SignedData: badCertificate(2).
//   Every response's outer SignedData is verified and its signer chained to ROOT.pem (PKIX); for a key, the
//   ServerKeyGenResponse control names the cmsSequence entry, the EnvelopedData is opened by BC's recipient for
//   the shroud, the inner SignedData is verified (signer = the issuing CA, chained to ROOT.pem), and the one
//   OneAsymmetricKey of the AsymmetricKeyPackage must be the key of the certificate signerIdentifier names.
//   With EST_SKG_RA=1 the server is an Estuary RA that generates the keys itself: the key package and the
//   response must be signed by an id-kp-cmcRA certificate (SKGD-42), and the response must carry the CA's own
//   signed success response through a Response Body control (SKGD-36, CMC-63); cases d and f (AuthenticatedData)
//   are not run.
//   Prints "ISSUED <case> <serial hex> <subject>" per generated certificate, "CASE <name> OK" per case and
//   "ALL OK" at the end; any failure prints the reason and exits 1.
import java.io.ByteArrayOutputStream;
import java.io.FileInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.math.BigInteger;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Security;
import java.security.Signature;
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
import java.security.interfaces.RSAPrivateCrtKey;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.RSAPublicKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.Collection;
import java.util.Collections;
import java.util.List;
import java.util.Locale;

import javax.net.ssl.HttpsURLConnection;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

import org.bouncycastle.asn1.ASN1Boolean;
import org.bouncycastle.asn1.ASN1Encodable;
import org.bouncycastle.asn1.ASN1EncodableVector;
import org.bouncycastle.asn1.ASN1Encoding;
import org.bouncycastle.asn1.ASN1Integer;
import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.ASN1OctetString;
import org.bouncycastle.asn1.ASN1Primitive;
import org.bouncycastle.asn1.ASN1Sequence;
import org.bouncycastle.asn1.ASN1TaggedObject;
import org.bouncycastle.asn1.ASN1UTF8String;
import org.bouncycastle.asn1.DERBitString;
import org.bouncycastle.asn1.DERNull;
import org.bouncycastle.asn1.DEROctetString;
import org.bouncycastle.asn1.DERSequence;
import org.bouncycastle.asn1.DERSet;
import org.bouncycastle.asn1.DERTaggedObject;
import org.bouncycastle.asn1.DERUTF8String;
import org.bouncycastle.asn1.cmc.BodyPartID;
import org.bouncycastle.asn1.cmc.BodyPartReference;
import org.bouncycastle.asn1.cmc.CMCObjectIdentifiers;
import org.bouncycastle.asn1.cmc.CMCStatusInfoV2;
import org.bouncycastle.asn1.cmc.ExtendedFailInfo;
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
import org.bouncycastle.asn1.cms.EnvelopedData;
import org.bouncycastle.asn1.cms.IssuerAndSerialNumber;
import org.bouncycastle.asn1.cms.SignedData;
import org.bouncycastle.asn1.cms.SignerIdentifier;
import org.bouncycastle.asn1.nist.NISTObjectIdentifiers;
import org.bouncycastle.asn1.pkcs.CertificationRequestInfo;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.pkcs.RSAESOAEPparams;
import org.bouncycastle.asn1.sec.SECObjectIdentifiers;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.AlgorithmIdentifier;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.Extensions;
import org.bouncycastle.asn1.x509.ExtensionsGenerator;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.asn1.x509.SubjectKeyIdentifier;
import org.bouncycastle.asn1.x509.SubjectPublicKeyInfo;
import org.bouncycastle.asn1.x9.X9ObjectIdentifiers;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cms.CMSAlgorithm;
import org.bouncycastle.cms.CMSAuthenticatedData;
import org.bouncycastle.cms.CMSAuthenticatedDataGenerator;
import org.bouncycastle.cms.CMSEnvelopedData;
import org.bouncycastle.cms.CMSProcessableByteArray;
import org.bouncycastle.cms.CMSSignedData;
import org.bouncycastle.cms.CMSSignedDataGenerator;
import org.bouncycastle.cms.KeyAgreeRecipientId;
import org.bouncycastle.cms.KeyAgreeRecipientInformation;
import org.bouncycastle.cms.KeyTransRecipientId;
import org.bouncycastle.cms.KeyTransRecipientInformation;
import org.bouncycastle.cms.PasswordRecipient;
import org.bouncycastle.cms.PasswordRecipientId;
import org.bouncycastle.cms.PasswordRecipientInformation;
import org.bouncycastle.cms.Recipient;
import org.bouncycastle.cms.RecipientId;
import org.bouncycastle.cms.RecipientInformation;
import org.bouncycastle.cms.SignerInformation;
import org.bouncycastle.cms.jcajce.JceCMSMacCalculatorBuilder;
import org.bouncycastle.cms.jcajce.JceKeyAgreeEnvelopedRecipient;
import org.bouncycastle.cms.jcajce.JceKeyTransEnvelopedRecipient;
import org.bouncycastle.cms.jcajce.JcePasswordEnvelopedRecipient;
import org.bouncycastle.cms.jcajce.JcePasswordRecipientInfoGenerator;
import org.bouncycastle.cms.jcajce.JcaSignerInfoGeneratorBuilder;
import org.bouncycastle.cms.jcajce.JcaSimpleSignerInfoVerifierBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.operator.jcajce.JcaDigestCalculatorProviderBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;
import org.bouncycastle.util.CollectionStore;
import org.bouncycastle.util.encoders.Hex;

public class CmcSkgInterop {
    static final String DEFAULT_ARC = "2.25.35258263107720737511850855134089286928";
    static ASN1ObjectIdentifier SKG_REQUEST, SKG_RESPONSE, SHROUD_PUBLIC_KEY, SHROUD_SHARED_SECRET, CET_SKG;

    static final ASN1ObjectIdentifier NO_SIGNATURE = new ASN1ObjectIdentifier("1.3.6.1.5.5.7.6.2");
    static final ASN1ObjectIdentifier PKIDATA = CMCObjectIdentifiers.id_cct_PKIData;
    static final ASN1ObjectIdentifier PKIRESPONSE = CMCObjectIdentifiers.id_cct_PKIResponse;
    static final ASN1ObjectIdentifier KEY_PACKAGE = new ASN1ObjectIdentifier("2.16.840.1.101.2.1.2.78.5");
    static final ASN1ObjectIdentifier PWRI_KEK = PKCSObjectIdentifiers.id_alg_PWRI_KEK;

    static final long BP_TXID = 1, BP_SNONCE = 2, BP_IDENT = 5, BP_SKG = 20, BP_ENROLL = 4;
    static final int ERR_ARCHIVE_NOT_SUPPORTED = 1, ERR_BAD_CERTIFICATE = 2, ERR_BAD_SHARED_SECRET = 3;
    static final int FAIL_BAD_REQUEST = 2;

    static final String CN_EC = "bc-skg-ec.example";
    static final String CN_RSA = "bc-skg-rsa.example";
    static final String CN_PWRI = "bc-skg-pwri.example";

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

    static void oids() {
        String a = System.getenv("EST_SKG_ARC");
        ASN1ObjectIdentifier arc = new ASN1ObjectIdentifier(a == null || a.isEmpty() ? DEFAULT_ARC : a);
        SKG_REQUEST = arc.branch("1.1");
        SKG_RESPONSE = arc.branch("1.2");
        SHROUD_PUBLIC_KEY = arc.branch("2.1");
        SHROUD_SHARED_SECRET = arc.branch("2.2");
        CET_SKG = arc.branch("3.1");
    }

    // ------------------------------------------------------------------------------------------
    // Transport (RFC 7030 §4.3 over TLS, base64 bodies)
    // ------------------------------------------------------------------------------------------

    static X509Certificate root;
    static SSLContext tls;
    static String base;
    static String basic;

    static void connect(String server, String rootPem, String user, String password) throws Exception {
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
        base = "https://" + server + "/.well-known/est";
        basic = "Basic " + Base64.getEncoder().encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
    }

    static String url(String label) {
        return base + (label == null || label.isEmpty() ? "" : "/" + label) + "/fullcmc";
    }

    static String skgLabel() {
        String l = System.getenv("EST_SKG_LABEL");
        return l == null ? "demo" : l;
    }

    /** EST_SKG_RA=1: the server is an Estuary RA that generates the keys itself (SKGD-34..SKGD-37, SKGD-42). */
    static final boolean RA = "1".equals(System.getenv("EST_SKG_RA"));
    static final String KP_CMC_RA = "1.3.6.1.5.5.7.3.28";
    static final ASN1ObjectIdentifier RESPONSE_BODY = new ASN1ObjectIdentifier("1.3.6.1.5.5.7.7.37");

    static boolean hasEku(X509CertificateHolder h, String oid) {
        Extension e = h.getExtension(Extension.extendedKeyUsage);
        if (e == null) {
            return false;
        }
        for (ASN1Encodable k : ASN1Sequence.getInstance(e.getParsedValue())) {
            if (ASN1ObjectIdentifier.getInstance(k).getId().equals(oid)) {
                return true;
            }
        }
        return false;
    }

    /**
     * RA mode (SKGD-36, CMC-63): the RA's response carries the CA's own response in cmsSequence, named by a
     * Response Body control: a SignedData over id-cct-PKIResponse, signed by the issuing CA of `issued` and
     * chained to ROOT.pem, that says success.
     */
    static void checkResponseBody(String w, Resp r, X509CertificateHolder issued) throws Exception {
        List<ASN1Encodable> paths = controlValues(r, RESPONSE_BODY);
        check(paths.size() == 1, w + ": one Response Body control (got " + paths.size() + ")");
        long id = BodyPartID.getInstance(ASN1Sequence.getInstance(paths.get(0)).getObjectAt(0)).getID();
        TaggedContentInfo entry = null;
        for (ASN1Encodable e : r.pr.getCmsSequence()) {
            TaggedContentInfo t = TaggedContentInfo.getInstance(e);
            if (t.getBodyPartID().getID() == id) {
                entry = t;
            }
        }
        check(entry != null, w + ": Response Body names cmsSequence entry " + id);
        Resp inner = new Resp();
        inner.der = entry.getContentInfo().getEncoded(ASN1Encoding.DER);
        parseResponse(inner, w + ": the CA's response (Response Body)");
        SignerInformation si = inner.sd.getSignerInfos().getSigners().iterator().next();
        X509CertificateHolder caSigner = null;
        for (X509CertificateHolder h : inner.certs) {
            if (si.getSID().match(h)) {
                caSigner = h;
            }
        }
        check(caSigner != null && caSigner.getSubject().equals(issued.getIssuer()),
            w + ": the CA's response is signed by the issuing CA " + issued.getIssuer());
        for (CMCStatusInfoV2 st : inner.statuses) {
            check(status(st) == 0, w + ": the CA answered the RA with success (" + describe(st) + ")");
        }
        check(!inner.statuses.isEmpty() || inner.certs.contains(issued), w + ": the CA's response says success");
    }

    static final class Resp {
        int http;
        String contentType;
        byte[] der;
        CMSSignedData sd;
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

    static Resp post(String target, byte[] der, String what, boolean withBasic) throws Exception {
        HttpsURLConnection c = (HttpsURLConnection) new URL(target).openConnection();
        c.setSSLSocketFactory(tls.getSocketFactory());
        c.setConnectTimeout(20000);
        c.setReadTimeout(120000);
        c.setRequestMethod("POST");
        c.setDoOutput(true);
        c.setInstanceFollowRedirects(false);
        c.setRequestProperty("Content-Type", "application/pkcs7-mime; smime-type=CMC-request");
        c.setRequestProperty("Content-Transfer-Encoding", "base64");
        if (withBasic) {
            c.setRequestProperty("Authorization", basic);
        }
        byte[] body = Base64.getMimeEncoder(64, new byte[] {'\r', '\n'}).encode(der);
        c.setFixedLengthStreamingMode(body.length);
        Resp r = new Resp();
        try {
            try (OutputStream o = c.getOutputStream()) {
                o.write(body);
            }
            r.http = c.getResponseCode();
        } catch (java.io.IOException e) {
            throw new AssertionError("FAILED: " + what + ": POST " + target + " failed: " + e);
        }
        r.contentType = c.getHeaderField("Content-Type");
        byte[] raw = readAll(r.http < 400 ? c.getInputStream() : c.getErrorStream());
        c.disconnect();
        note(what + ": POST " + target + " -> HTTP " + r.http + ", Content-Type " + r.contentType + ", "
            + raw.length + " body bytes");
        String ct = r.contentType == null ? "" : r.contentType.toLowerCase(Locale.ROOT);
        if (!ct.startsWith("application/pkcs7-mime")) {
            throw new AssertionError("FAILED: " + what + ": expected a CMC response, got HTTP " + r.http
                + " Content-Type " + r.contentType + ": " + printable(raw));
        }
        r.der = Base64.getDecoder().decode(new String(raw, StandardCharsets.US_ASCII).replaceAll("[\\r\\n\\t ]", ""));
        dump(what, der, r.der);
        parseResponse(r, what);
        return r;
    }

    /** With BC_SKG_DUMP=DIR, each request and response DER is written there (for asn1parse). */
    static void dump(String what, byte[] request, byte[] response) throws Exception {
        String dir = System.getenv("BC_SKG_DUMP");
        if (dir == null || dir.isEmpty()) {
            return;
        }
        String stem = dir + "/" + what.replaceAll("[^A-Za-z0-9.-]+", "_");
        java.nio.file.Files.write(java.nio.file.Paths.get(stem + ".req.der"), request);
        java.nio.file.Files.write(java.nio.file.Paths.get(stem + ".resp.der"), response);
    }

    // ------------------------------------------------------------------------------------------
    // Response verification
    // ------------------------------------------------------------------------------------------

    static X509Certificate jca(X509CertificateHolder h) throws Exception {
        return new JcaX509CertificateConverter().setProvider("BC").getCertificate(h);
    }

    /** PKIX path from target to ROOT.pem through pool (revocation off); empty when target is the root. */
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

    /** Verifies every SignerInfo of sd with its certificate from sd and chains that certificate to ROOT.pem. */
    static X509CertificateHolder verifySigned(CMSSignedData sd, List<X509CertificateHolder> pool, String what)
        throws Exception {
        Collection<SignerInformation> signers = sd.getSignerInfos().getSigners();
        check(signers.size() == 1, what + ": exactly one SignerInfo (got " + signers.size() + ")");
        SignerInformation si = signers.iterator().next();
        @SuppressWarnings("unchecked") // SignerId is a raw Selector in BC 1.72
        Collection<X509CertificateHolder> m = sd.getCertificates().getMatches(si.getSID());
        check(!m.isEmpty(), what + ": the signer's certificate is among the SignedData certificates");
        X509CertificateHolder sc = m.iterator().next();
        boolean valid;
        String why = "";
        try {
            valid = si.verify(new JcaSimpleSignerInfoVerifierBuilder().setProvider("BC").build(sc));
        } catch (org.bouncycastle.cms.CMSException e) {
            valid = false;
            why = ": " + e;
        }
        check(valid, what + ": signature verifies (signer " + sc.getSubject() + ")" + why);
        CertPath p;
        try {
            p = chainToRoot(sc, pool);
        } catch (Exception e) {
            throw new AssertionError("FAILED: " + what + ": signer " + sc.getSubject() + " does not chain to ROOT.pem: " + e);
        }
        check(true, what + ": signer chains to ROOT.pem (PKIX, path length " + p.getCertificates().size() + ")");
        return sc;
    }

    static void parseResponse(Resp r, String what) throws Exception {
        try {
            r.sd = new CMSSignedData(r.der);
        } catch (Exception e) {
            throw new AssertionError("FAILED: " + what + ": the body is not a CMS SignedData: " + e);
        }
        r.certs.addAll(r.sd.getCertificates().getMatches(null));
        check(PKIRESPONSE.getId().equals(r.sd.getSignedContentTypeOID()),
            what + ": eContentType id-cct-PKIResponse (got " + r.sd.getSignedContentTypeOID() + ")");
        verifySigned(r.sd, r.certs, what + ": outer SignedData");
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
            }
        }
        note(what + ": " + r.controls.size() + " controls, " + r.pr.getCmsSequence().size() + " cmsSequence, "
            + r.certs.size() + " certificates");
    }

    static int status(CMCStatusInfoV2 st) {
        return ASN1Integer.getInstance(st.getcMCStatus().toASN1Primitive()).intValueExact();
    }

    static int failInfo(CMCStatusInfoV2 st) {
        OtherStatusInfo o = st.getOtherStatusInfo();
        if (o == null || !o.isFailInfo()) {
            return -1;
        }
        return ASN1Integer.getInstance(o.toASN1Primitive()).intValueExact();
    }

    static ExtendedFailInfo extendedFailInfo(CMCStatusInfoV2 st) {
        OtherStatusInfo o = st.getOtherStatusInfo();
        if (o == null || !o.isExtendedFailInfo()) {
            return null;
        }
        return ExtendedFailInfo.getInstance(o.toASN1Primitive());
    }

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

    static String describe(CMCStatusInfoV2 st) {
        StringBuilder b = new StringBuilder("status " + status(st));
        int f = failInfo(st);
        ExtendedFailInfo x = extendedFailInfo(st);
        if (f >= 0) {
            b.append(" failInfo ").append(f);
        } else if (x != null) {
            b.append(" extendedFailInfo {").append(x.getFailInfoOID()).append(", ")
                .append(x.getFailInfoValue().toASN1Primitive()).append('}');
        }
        b.append(" bodyList ").append(bodyList(st));
        ASN1UTF8String text = st.getStatusStringUTF8();
        if (text != null) {
            b.append(" \"").append(text.getString()).append('"');
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
        check(v.size() == 1, what + ": exactly one " + name + " control (got " + v.size() + ")");
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

    /** transactionId echoed, recipientNonce = our senderNonce, a fresh senderNonce (SKGD-23, SKGD-26). */
    static void expectEchoes(Req q, Resp r, String w) {
        byte[] rn = ASN1OctetString.getInstance(single(r, CMCObjectIdentifiers.id_cmc_recipientNonce, "recipientNonce", w))
            .getOctets();
        check(Arrays.equals(rn, q.senderNonce), w + ": recipientNonce equals our senderNonce");
        byte[] sn = ASN1OctetString.getInstance(single(r, CMCObjectIdentifiers.id_cmc_senderNonce, "senderNonce", w))
            .getOctets();
        check(sn.length >= 16 && !Arrays.equals(sn, q.senderNonce), w + ": a fresh senderNonce of " + sn.length + " bytes");
        BigInteger tx = ASN1Integer.getInstance(single(r, CMCObjectIdentifiers.id_cmc_transactionId, "transactionId", w))
            .getValue();
        check(tx.equals(q.transactionId), w + ": transactionId " + tx + " echoed");
    }

    // ------------------------------------------------------------------------------------------
    // Requests
    // ------------------------------------------------------------------------------------------

    static final class Req {
        BigInteger transactionId = new BigInteger(63, RNG).add(BigInteger.ONE);
        byte[] senderNonce = new byte[16];
        X500Name subject;
        byte[] der;

        Req() {
            RNG.nextBytes(senderNonce);
        }
    }

    static final class Client {
        KeyPair kp;
        String sigAlg;
        X509CertificateHolder cert;
        List<X509CertificateHolder> chain = new ArrayList<>(); // cert first, then its CA certificates
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

    static TaggedAttribute control(long bodyPartId, ASN1ObjectIdentifier type, ASN1Encodable value) {
        return new TaggedAttribute(new BodyPartID(bodyPartId), type, new DERSet(value));
    }

    static List<TaggedAttribute> transactionControls(Req q) {
        List<TaggedAttribute> c = new ArrayList<>();
        c.add(control(BP_TXID, CMCObjectIdentifiers.id_cmc_transactionId, new ASN1Integer(q.transactionId)));
        c.add(control(BP_SNONCE, CMCObjectIdentifiers.id_cmc_senderNonce, new DEROctetString(q.senderNonce)));
        return c;
    }

    static byte[] pkiData(List<TaggedAttribute> controls, TaggedRequest[] reqs) throws Exception {
        return new PKIData(controls.toArray(new TaggedAttribute[0]), reqs, new TaggedContentInfo[0], new OtherMsg[0])
            .getEncoded(ASN1Encoding.DER);
    }

    /** DER ContentInfo(SignedData(PKIData)); sid = ski (request key) or issuerAndSerialNumber (certificate). */
    static byte[] sign(byte[] pkiDataDer, KeyPair kp, String sigAlg, byte[] ski, List<X509CertificateHolder> certs)
        throws Exception {
        ContentSigner s = new JcaContentSignerBuilder(sigAlg).setProvider("BC").build(kp.getPrivate());
        JcaSignerInfoGeneratorBuilder b = new JcaSignerInfoGeneratorBuilder(
            new JcaDigestCalculatorProviderBuilder().setProvider("BC").build());
        CMSSignedDataGenerator gen = new CMSSignedDataGenerator();
        if (certs == null) {
            gen.addSignerInfoGenerator(b.build(s, ski));
        } else {
            gen.addSignerInfoGenerator(b.build(s, certs.get(0)));
            gen.addCertificates(new CollectionStore<>(certs));
        }
        CMSSignedData sd = gen.generate(new CMSProcessableByteArray(PKIDATA, pkiDataDer), true);
        return sd.toASN1Structure().getEncoded(ASN1Encoding.DER);
    }

    /**
     * ContentInfo(AuthenticatedData(PKIData)) (RFC 5272 §3.2.3, SKGD-17): HMAC-SHA256 under a random key carried
     * in a PasswordRecipientInfo (PBKDF2-HMAC-SHA256, id-alg-PWRI-KEK with AES-256-CBC) whose password is UTF-8
     * Identification || shared secret, as Estuary's server checks it (est-cmc request.rs verify_mac).
     */
    static byte[] authenticate(byte[] pkiDataDer, String ident, String secret) throws Exception {
        CMSAuthenticatedDataGenerator gen = new CMSAuthenticatedDataGenerator();
        gen.addRecipientInfoGenerator(new JcePasswordRecipientInfoGenerator(CMSAlgorithm.AES256_CBC,
            (ident + secret).toCharArray()).setProvider("BC")
            .setPasswordConversionScheme(PasswordRecipient.PKCS5_SCHEME2_UTF8)
            .setPRF(PasswordRecipient.PRF.HMacSHA256));
        CMSAuthenticatedData ad = gen.generate(new CMSProcessableByteArray(PKIDATA, pkiDataDer),
            new JceCMSMacCalculatorBuilder(PKCSObjectIdentifiers.id_hmacWithSHA256, 256).setProvider("BC")
                .setSecureRandom(RNG).build(),
            new JcaDigestCalculatorProviderBuilder().setProvider("BC").build()
                .get(new AlgorithmIdentifier(NISTObjectIdentifiers.id_sha256)));
        return ad.toASN1Structure().getEncoded(ASN1Encoding.DER);
    }

    static Extensions sanExtensions(String dns) throws Exception {
        ExtensionsGenerator eg = new ExtensionsGenerator();
        eg.addExtension(Extension.subjectAlternativeName, false,
            new GeneralNames(new GeneralName(GeneralName.dNSName, dns)));
        return eg.generate();
    }

    /** A client certificate: PKCS#10 signed by its key, in SignedData signed by the same key, HTTP Basic. */
    static Client enroll(String keyAlg, String cn) throws Exception {
        String w = "enroll " + keyAlg + " client certificate CN=" + cn;
        Client c = new Client();
        c.kp = keyPair(keyAlg);
        c.sigAlg = keyAlg.equals("EC") ? "SHA256withECDSA" : "SHA256withRSA";
        byte[] ski = new JcaX509ExtensionUtils().createSubjectKeyIdentifier(c.kp.getPublic()).getKeyIdentifier();
        ExtensionsGenerator eg = new ExtensionsGenerator();
        eg.addExtension(Extension.subjectAlternativeName, false, new GeneralNames(new GeneralName(GeneralName.dNSName, cn)));
        eg.addExtension(Extension.subjectKeyIdentifier, false, new SubjectKeyIdentifier(ski));
        X500Name subject = new X500Name("CN=" + cn);
        PKCS10CertificationRequest p10 = new JcaPKCS10CertificationRequestBuilder(subject, c.kp.getPublic())
            .addAttribute(PKCSObjectIdentifiers.pkcs_9_at_extensionRequest, eg.generate())
            .build(new JcaContentSignerBuilder(c.sigAlg).setProvider("BC").build(c.kp.getPrivate()));
        TaggedRequest tr = new TaggedRequest(new TaggedCertificationRequest(new BodyPartID(BP_ENROLL),
            org.bouncycastle.asn1.cmc.CertificationRequest.getInstance(p10.getEncoded())));
        Req q = new Req();
        byte[] der = sign(pkiData(transactionControls(q), new TaggedRequest[] {tr}), c.kp, c.sigAlg, ski, null);
        Resp r = post(url(null), der, w, true);
        check(r.http == 200, w + ": HTTP 200 (got " + r.http + "; " + failures(r) + ")");
        for (CMCStatusInfoV2 st : r.statuses) {
            check(status(st) == 0, w + ": status success (" + describe(st) + ")");
        }
        expectEchoes(q, r, w);
        byte[] spki = c.kp.getPublic().getEncoded();
        for (X509CertificateHolder h : r.certs) {
            if (Arrays.equals(h.getSubjectPublicKeyInfo().getEncoded(ASN1Encoding.DER), spki)) {
                c.cert = h;
            }
        }
        check(c.cert != null && c.cert.getSubject().equals(subject), w + ": the certificate for our key, subject " + subject);
        CertPath p = chainToRoot(c.cert, r.certs);
        check(true, w + ": it chains to ROOT.pem (serial " + c.cert.getSerialNumber().toString(16) + ")");
        c.chain.add(c.cert);
        for (java.security.cert.Certificate x : p.getCertificates()) {
            X509CertificateHolder h = new X509CertificateHolder(x.getEncoded());
            if (!h.equals(c.cert)) {
                c.chain.add(h);
            }
        }
        KeyUsage ku = KeyUsage.fromExtensions(c.cert.getExtensions());
        int needed = keyAlg.equals("EC") ? KeyUsage.keyAgreement : KeyUsage.keyEncipherment;
        check(ku == null || ku.hasUsages(needed), w + ": KeyUsage allows "
            + (keyAlg.equals("EC") ? "keyAgreement" : "keyEncipherment") + " (SKGD-13)");
        check(c.cert.getExtension(Extension.subjectAlternativeName) != null, w + ": the certificate has a subjectAltName");
        return c;
    }

    /**
     * The certificateRequest of a ServerKeyGenRequest (SKGD-2, SKGD-3, SKGD-5): tcr with bodyPartID 0, a PKCS#10
     * whose SPKI names `alg` with a zero-length subjectPublicKey, signed with id-alg-noSignature (NULL
     * parameters) and an empty signature.
     */
    static TaggedRequest placeholder(X500Name subject, AlgorithmIdentifier alg, Extensions ext) throws Exception {
        org.bouncycastle.asn1.pkcs.Attribute extReq = new org.bouncycastle.asn1.pkcs.Attribute(
            PKCSObjectIdentifiers.pkcs_9_at_extensionRequest, new DERSet(ext));
        CertificationRequestInfo info = new CertificationRequestInfo(subject, new SubjectPublicKeyInfo(alg, new byte[0]),
            new DERSet(extReq));
        org.bouncycastle.asn1.pkcs.CertificationRequest cr = new org.bouncycastle.asn1.pkcs.CertificationRequest(info,
            new AlgorithmIdentifier(NO_SIGNATURE, DERNull.INSTANCE), new DERBitString(new byte[0]));
        return new TaggedRequest(new TaggedCertificationRequest(new BodyPartID(0),
            org.bouncycastle.asn1.cmc.CertificationRequest.getInstance(cr.getEncoded(ASN1Encoding.DER))));
    }

    static final AlgorithmIdentifier P256 = new AlgorithmIdentifier(X9ObjectIdentifiers.id_ecPublicKey,
        SECObjectIdentifiers.secp256r1);
    static final AlgorithmIdentifier RSA = new AlgorithmIdentifier(PKCSObjectIdentifiers.rsaEncryption, DERNull.INSTANCE);

    static ASN1Sequence cap(ASN1ObjectIdentifier id, ASN1Encodable params) {
        return params == null ? new DERSequence(id) : new DERSequence(new ASN1Encodable[] {id, params});
    }

    /** SMIMECapabilities (SKGD-8): what BC can open. */
    static ASN1Sequence capabilities(boolean sharedSecret) {
        ASN1EncodableVector v = new ASN1EncodableVector();
        v.add(cap(NISTObjectIdentifiers.id_aes256_CBC, null));
        v.add(cap(NISTObjectIdentifiers.id_aes128_CBC, null));
        if (sharedSecret) {
            v.add(cap(PKCSObjectIdentifiers.id_PBKDF2, null));
            v.add(cap(PWRI_KEK, null));
            v.add(cap(SHROUD_SHARED_SECRET, null));
        } else {
            AlgorithmIdentifier sha256 = new AlgorithmIdentifier(NISTObjectIdentifiers.id_sha256);
            v.add(cap(PKCSObjectIdentifiers.id_RSAES_OAEP, new RSAESOAEPparams(sha256,
                new AlgorithmIdentifier(PKCSObjectIdentifiers.id_mgf1, sha256), RSAESOAEPparams.DEFAULT_P_SOURCE_ALGORITHM)));
            v.add(cap(PKCSObjectIdentifiers.rsaEncryption, null));
            // RFC 5753 §7.2: an ECDH scheme's capability parameters are its key wrap algorithm.
            v.add(cap(SECObjectIdentifiers.dhSinglePass_stdDH_sha256kdf_scheme,
                new AlgorithmIdentifier(NISTObjectIdentifiers.id_aes256_wrap)));
            v.add(cap(NISTObjectIdentifiers.id_aes256_wrap, null));
            v.add(cap(SHROUD_PUBLIC_KEY, null));
        }
        return new DERSequence(v);
    }

    /**
     * PKIData with transactionId, senderNonce, [Identification,] and the ServerKeyGenRequest control (body part
     * 20): SEQUENCE { certificateRequest, shroudMethod, algCapabilities, archiveKey (null: absent = TRUE) };
     * reqSequence, cmsSequence and otherMsgSequence empty (SKGD-1).
     */
    static byte[] skgPkiData(Req q, String ident, TaggedRequest certReq, AlgorithmIdentifier shroud,
        ASN1Sequence caps, Boolean archiveKey) throws Exception {
        List<TaggedAttribute> controls = transactionControls(q);
        if (ident != null) {
            controls.add(control(BP_IDENT, CMCObjectIdentifiers.id_cmc_identification, new DERUTF8String(ident)));
        }
        ASN1EncodableVector v = new ASN1EncodableVector();
        v.add(certReq);
        v.add(shroud);
        v.add(caps);
        if (archiveKey != null) {
            v.add(archiveKey ? ASN1Boolean.TRUE : ASN1Boolean.FALSE);
        }
        DERSequence skgReq = new DERSequence(v);
        selfCheck(skgReq, archiveKey);
        controls.add(control(BP_SKG, SKG_REQUEST, skgReq));
        byte[] der = pkiData(controls, new TaggedRequest[0]);
        PKIData back = PKIData.getInstance(der);
        if (back.getReqSequence().length != 0 || back.getCmsSequence().length != 0
            || back.getOtherMsgSequence().length != 0) {
            throw new IllegalStateException("PKIData sequences are not empty");
        }
        return der;
    }

    /**
     * Our own ServerKeyGenRequest read back: tcr [0] with bodyPartID 0 and a zero-length key signed with
     * id-alg-noSignature; certIdentifier [1] and bareKey [2] EXPLICIT (constructed, the inner TLV whole);
     * archiveKey encoded exactly when not absent.
     */
    static void selfCheck(DERSequence req, Boolean archiveKey) throws Exception {
        TaggedRequest tr = TaggedRequest.getInstance(req.getObjectAt(0));
        ASN1Sequence tcr = ASN1Sequence.getInstance(tr.getValue());
        org.bouncycastle.asn1.pkcs.CertificationRequest cr = org.bouncycastle.asn1.pkcs.CertificationRequest.getInstance(
            tcr.getObjectAt(1));
        if (tr.getTagNo() != TaggedRequest.TCR || BodyPartID.getInstance(tcr.getObjectAt(0)).getID() != 0
            || cr.getCertificationRequestInfo().getSubjectPublicKeyInfo().getPublicKeyData().getBytes().length != 0
            || !cr.getSignatureAlgorithm().getAlgorithm().equals(NO_SIGNATURE) || cr.getSignature().getBytes().length != 0) {
            throw new IllegalStateException("certificateRequest is not the placeholder tcr");
        }
        AlgorithmIdentifier shroud = AlgorithmIdentifier.getInstance(req.getObjectAt(1));
        byte[] p = shroud.getParameters().toASN1Primitive().getEncoded(ASN1Encoding.DER);
        int tag = p[0] & 0xff;
        if (tag == 0xa1 || tag == 0xa2) {
            ASN1TaggedObject t = ASN1TaggedObject.getInstance(p);
            byte[] innerDer = t.getBaseObject().toASN1Primitive().getEncoded(ASN1Encoding.DER);
            if (!t.isExplicit() || p.length <= innerDer.length
                || !Arrays.equals(Arrays.copyOfRange(p, p.length - innerDer.length, p.length), innerDer)) {
                throw new IllegalStateException("[" + (tag & 0x1f) + "] is not an EXPLICIT tag");
            }
        }
        int n = req.size();
        if ((archiveKey == null) != (n == 3)
            || (archiveKey != null && ASN1Boolean.getInstance(req.getObjectAt(3)).isTrue() != archiveKey)) {
            throw new IllegalStateException("archiveKey encoding");
        }
    }

    /** A ServerKeyGenRequest signed with client c's certificate (SKGD-17), names from c's certificate (SKGD-16). */
    static byte[] signedSkg(Req q, Client c, AlgorithmIdentifier wanted, AlgorithmIdentifier shroud, Boolean archive)
        throws Exception {
        q.subject = c.cert.getSubject();
        Extensions ext = new Extensions(c.cert.getExtension(Extension.subjectAlternativeName));
        byte[] pd = skgPkiData(q, null, placeholder(q.subject, wanted, ext), shroud, capabilities(false), archive);
        return sign(pd, c.kp, c.sigAlg, null, c.chain);
    }

    static AlgorithmIdentifier shroudCertificate(X509CertificateHolder cert) {
        return new AlgorithmIdentifier(SHROUD_PUBLIC_KEY, cert.toASN1Structure());
    }

    static AlgorithmIdentifier shroudCertIdentifier(SignerIdentifier sid) {
        return new AlgorithmIdentifier(SHROUD_PUBLIC_KEY, new DERTaggedObject(true, 1, sid));
    }

    static AlgorithmIdentifier shroudBareKey(PublicKey pub, byte[] ski) {
        return new AlgorithmIdentifier(SHROUD_PUBLIC_KEY, new DERTaggedObject(true, 2, new DERSequence(
            new ASN1Encodable[] {SubjectPublicKeyInfo.getInstance(pub.getEncoded()), new DEROctetString(ski)})));
    }

    static AlgorithmIdentifier shroudSharedSecret(String name) {
        return new AlgorithmIdentifier(SHROUD_SHARED_SECRET, new DERUTF8String(name));
    }

    static SignerIdentifier issuerAndSerial(X509CertificateHolder h) {
        return new SignerIdentifier(new IssuerAndSerialNumber(h.getIssuer(), h.getSerialNumber()));
    }

    // ------------------------------------------------------------------------------------------
    // Opening a generated key (SKGD-18, SKGD-19, SKGD-22, SKGD-24)
    // ------------------------------------------------------------------------------------------

    static boolean names(SignerIdentifier sid, X509CertificateHolder h) {
        ASN1Encodable id = sid.getId();
        if (id instanceof ASN1TaggedObject || id instanceof ASN1OctetString) {
            byte[] ski = ASN1OctetString.getInstance(id instanceof ASN1TaggedObject
                ? ((ASN1TaggedObject) id).getBaseObject() : id).getOctets();
            Extension e = h.getExtension(Extension.subjectKeyIdentifier);
            return e != null && Arrays.equals(SubjectKeyIdentifier.getInstance(e.getParsedValue()).getKeyIdentifier(), ski);
        }
        IssuerAndSerialNumber ias = IssuerAndSerialNumber.getInstance(id);
        return ias.getName().equals(h.getIssuer()) && ias.getSerialNumber().getValue().equals(h.getSerialNumber());
    }

    /**
     * The response to a ServerKeyGenRequest that must succeed: success only, echoes, exactly one
     * ServerKeyGenResponse { cmsBodyPartId, requestBodyPartId = 20, signerIdentifier }, its cmsSequence entry an
     * EnvelopedData with recipient `rid` of class `ridClass`, opened by `recipient`; the inner SignedData over
     * id-ct-KP-aKeyPackage verified (signer = the certificate's issuer, chained to ROOT.pem); the one
     * OneAsymmetricKey the private key of the named certificate. Returns that certificate.
     */
    static X509CertificateHolder openKey(String w, Req q, Resp r, RecipientId rid, Class<?> ridClass,
        Recipient recipient, String keyAlg) throws Exception {
        check(r.http == 200, w + ": HTTP 200 (got " + r.http + (r.statuses.isEmpty() ? "" : "; " + failures(r)) + ")");
        for (CMCStatusInfoV2 st : r.statuses) {
            check(status(st) == 0, w + ": status success (" + describe(st) + ")");
        }
        expectEchoes(q, r, w);
        ASN1Sequence resp = ASN1Sequence.getInstance(single(r, SKG_RESPONSE, "ServerKeyGenResponse", w));
        check(resp.size() == 3, w + ": ServerKeyGenResponse has 3 fields");
        long cmsId = BodyPartID.getInstance(resp.getObjectAt(0)).getID();
        long reqId = BodyPartID.getInstance(resp.getObjectAt(1)).getID();
        SignerIdentifier sid = SignerIdentifier.getInstance(resp.getObjectAt(2));
        check(reqId == BP_SKG, w + ": requestBodyPartId " + reqId + " = the ServerKeyGenRequest control's " + BP_SKG);
        X509CertificateHolder issued = null;
        for (X509CertificateHolder h : r.certs) {
            if (names(sid, h)) {
                issued = h;
            }
        }
        check(issued != null, w + ": signerIdentifier names a certificate of the outer SignedData ("
            + (sid.isTagged() ? "subjectKeyIdentifier" : "issuerAndSerialNumber") + ")");
        check(issued.getSubject().equals(q.subject), w + ": the issued certificate's subject is " + issued.getSubject());
        jca(issued).checkValidity();
        CertPath p = chainToRoot(issued, r.certs);
        check(true, w + ": the issued certificate chains to ROOT.pem (path length " + p.getCertificates().size() + ")");

        TaggedContentInfo entry = null;
        for (ASN1Encodable e : r.pr.getCmsSequence()) {
            TaggedContentInfo t = TaggedContentInfo.getInstance(e);
            if (t.getBodyPartID().getID() == cmsId) {
                entry = t;
            }
        }
        check(entry != null, w + ": cmsSequence has the entry cmsBodyPartId " + cmsId);
        ContentInfo ci = entry.getContentInfo();
        check(CMSObjectIdentifiers.envelopedData.equals(ci.getContentType()), w + ": it is an EnvelopedData");
        EnvelopedData ed = EnvelopedData.getInstance(ci.getContent());
        ASN1ObjectIdentifier encType = ed.getEncryptedContentInfo().getContentType();
        check(CMSObjectIdentifiers.signedData.equals(encType),
            w + ": encryptedContentInfo.contentType id-signedData (got " + encType + ")");
        CMSEnvelopedData env = new CMSEnvelopedData(ci);
        note(w + ": content encryption " + env.getEncryptionAlgOID() + ", " + env.getRecipientInfos().size()
            + " recipient(s)");
        RecipientInformation ri = env.getRecipientInfos().get(rid);
        check(ri != null && ridClass.isInstance(ri), w + ": a " + ridClass.getSimpleName() + " for " + describe(rid));
        note(w + ": key encryption " + ri.getKeyEncryptionAlgOID());
        byte[] content;
        try {
            content = ri.getContent(recipient);
        } catch (Exception e) {
            throw new AssertionError("FAILED: " + w + ": BC cannot decrypt the EnvelopedData: " + e);
        }
        check(true, w + ": BC decrypted the EnvelopedData (" + content.length + " bytes)");

        // The encrypted content of type id-signedData: a SignedData (RFC 5652 §6.1), or, as some
        // implementations write it, a ContentInfo wrapping one.
        ASN1Sequence inner = ASN1Sequence.getInstance(content);
        boolean wrapped = inner.getObjectAt(0) instanceof ASN1ObjectIdentifier;
        note(w + ": the decrypted content is " + (wrapped ? "a ContentInfo(SignedData)" : "a bare SignedData"));
        CMSSignedData isd = new CMSSignedData(wrapped ? ContentInfo.getInstance(inner)
            : new ContentInfo(CMSObjectIdentifiers.signedData, SignedData.getInstance(inner)));
        check(KEY_PACKAGE.getId().equals(isd.getSignedContentTypeOID()),
            w + ": inner eContentType id-ct-KP-aKeyPackage (got " + isd.getSignedContentTypeOID() + ")");
        List<X509CertificateHolder> pool = new ArrayList<>(isd.getCertificates().getMatches(null));
        pool.addAll(r.certs);
        X509CertificateHolder generator = verifySigned(isd, pool, w + ": inner SignedData");
        if (RA) {
            // SKGD-36, SKGD-42: the RA generated the key and signed the key package and the response.
            check(hasEku(generator, KP_CMC_RA) && !generator.getSubject().equals(issued.getIssuer()),
                w + ": the key package is signed by the RA " + generator.getSubject() + " (id-kp-cmcRA, SKGD-42)");
            SignerInformation outer = r.sd.getSignerInfos().getSigners().iterator().next();
            check(outer.getSID().match(generator), w + ": the RA signed the response too (SKGD-36)");
            checkResponseBody(w, r, issued);
        } else {
            check(generator.getSubject().equals(issued.getIssuer()),
                w + ": the key package is signed by the issuing CA " + generator.getSubject() + " (SKGD-19)");
            jca(issued).verify(jca(generator).getPublicKey());
            check(true, w + ": the key generator's key signed the issued certificate");
        }

        ASN1Sequence akp = ASN1Sequence.getInstance((byte[]) isd.getSignedContent().getContent());
        check(akp.size() == 1, w + ": AsymmetricKeyPackage holds exactly one OneAsymmetricKey (got " + akp.size() + ")");
        PrivateKeyInfo oak = PrivateKeyInfo.getInstance(akp.getObjectAt(0));
        check(oak.getVersion().getValue().intValue() == 1 && oak.hasPublicKey(),
            w + ": OneAsymmetricKey v2 with publicKey (SKGD-18)");
        SubjectPublicKeyInfo certSpki = issued.getSubjectPublicKeyInfo();
        check(Arrays.equals(oak.getPublicKeyData().getBytes(), certSpki.getPublicKeyData().getBytes()),
            w + ": its publicKey is the issued certificate's");
        check(oak.getPrivateKeyAlgorithm().getAlgorithm().equals(certSpki.getAlgorithm().getAlgorithm()),
            w + ": privateKeyAlgorithm " + oak.getPrivateKeyAlgorithm().getAlgorithm());
        PrivateKey priv = KeyFactory.getInstance(keyAlg, "BC")
            .generatePrivate(new PKCS8EncodedKeySpec(oak.getEncoded(ASN1Encoding.DER)));
        byte[] derived;
        if (keyAlg.equals("EC")) {
            org.bouncycastle.jce.interfaces.ECPrivateKey ec = (org.bouncycastle.jce.interfaces.ECPrivateKey) priv;
            derived = ec.getParameters().getG().multiply(ec.getD()).normalize().getEncoded(false);
            check(certSpki.getAlgorithm().getParameters().equals(SECObjectIdentifiers.secp256r1),
                w + ": the generated key is on P-256");
        } else {
            RSAPrivateCrtKey rsa = (RSAPrivateCrtKey) priv;
            PublicKey pub = KeyFactory.getInstance("RSA", "BC").generatePublic(
                new RSAPublicKeySpec(rsa.getModulus(), rsa.getPublicExponent()));
            derived = SubjectPublicKeyInfo.getInstance(pub.getEncoded()).getPublicKeyData().getBytes();
            check(rsa.getModulus().bitLength() == 2048, w + ": the generated key is RSA-2048");
        }
        check(Arrays.equals(derived, certSpki.getPublicKeyData().getBytes()),
            w + ": the private key's public key (computed from it) is the issued certificate's (SKGD-24)");
        String sigAlg = keyAlg.equals("EC") ? "SHA256withECDSA" : "SHA256withRSA";
        byte[] msg = ("bc-skg " + w).getBytes(StandardCharsets.UTF_8);
        Signature s = Signature.getInstance(sigAlg, "BC");
        s.initSign(priv);
        s.update(msg);
        byte[] sig = s.sign();
        Signature v = Signature.getInstance(sigAlg, "BC");
        v.initVerify(jca(issued).getPublicKey());
        v.update(msg);
        check(v.verify(sig), w + ": a signature by the private key verifies with the issued certificate");
        System.out.println("ISSUED " + w + " " + issued.getSerialNumber().toString(16) + " " + issued.getSubject());
        return issued;
    }

    static String describe(RecipientId rid) {
        if (rid instanceof KeyAgreeRecipientId) {
            KeyAgreeRecipientId k = (KeyAgreeRecipientId) rid;
            return k.getSubjectKeyIdentifier() != null ? "rKeyId " + hex(k.getSubjectKeyIdentifier())
                : "issuerAndSerialNumber " + k.getIssuer() + " #" + k.getSerialNumber().toString(16);
        }
        if (rid instanceof KeyTransRecipientId) {
            KeyTransRecipientId k = (KeyTransRecipientId) rid;
            return "issuerAndSerialNumber " + k.getIssuer() + " #" + k.getSerialNumber().toString(16);
        }
        return "password";
    }

    /**
     * A refused ServerKeyGenRequest (SKGD-25, SKGD-26): HTTP 4xx with a signed PKIResponse; failed with
     * extendedFailInfo { id-cet-serverKeyGen, code } and failed with failInfo badRequest, both for body part 20;
     * echoes; no ServerKeyGenResponse, no cmsSequence, no certificate for the subject other than the signer's.
     */
    static void expectSkgError(String w, Req q, Resp r, int code, X509CertificateHolder signer) {
        check(r.http >= 400 && r.http < 500, w + ": HTTP 4xx (got " + r.http + ")");
        boolean ext = false, bad = false;
        for (CMCStatusInfoV2 st : r.statuses) {
            ExtendedFailInfo x = extendedFailInfo(st);
            boolean ours = bodyList(st).contains(BP_SKG) && status(st) == 2;
            if (ours && x != null && x.getFailInfoOID().equals(CET_SKG)
                && ASN1Integer.getInstance(x.getFailInfoValue()).intValueExact() == code) {
                ext = true;
            }
            bad |= ours && failInfo(st) == FAIL_BAD_REQUEST;
        }
        check(ext, w + ": failed(2) with extendedFailInfo { " + CET_SKG + ", " + code + " } for body part " + BP_SKG
            + " (got: " + failures(r) + ")");
        check(bad, w + ": failed(2) with failInfo badRequest(2) for body part " + BP_SKG);
        expectEchoes(q, r, w);
        check(controlValues(r, SKG_RESPONSE).isEmpty() && r.pr.getCmsSequence().size() == 0,
            w + ": no ServerKeyGenResponse, no cmsSequence");
        for (X509CertificateHolder h : r.certs) {
            check(!h.getSubject().equals(q.subject) || (signer != null && h.equals(signer)),
                w + ": no new certificate for " + q.subject + " (" + h.getSerialNumber().toString(16) + ")");
        }
    }

    // ------------------------------------------------------------------------------------------
    // The cases
    // ------------------------------------------------------------------------------------------

    static void live(String server, String rootPem, String user, String password, String ident, String identSecret,
        String shroudName, String shroudSecret, String otherName) throws Exception {
        connect(server, rootPem, user, password);
        String skg = url(skgLabel());
        Client ec = enroll("EC", CN_EC);
        Client rsa = enroll("RSA", CN_RSA);
        System.out.println("CASE enroll OK (EC " + ec.cert.getSerialNumber().toString(16) + ", RSA "
            + rsa.cert.getSerialNumber().toString(16) + ")");

        // a. certificate: the EC client certificate itself; kari, rid issuerAndSerialNumber.
        {
            String w = "shroud-certificate";
            Req q = new Req();
            q.der = signedSkg(q, ec, P256, shroudCertificate(ec.cert), false);
            Resp r = post(skg, q.der, w, false);
            X509CertificateHolder issued = openKey(w, q, r,
                new KeyAgreeRecipientId(ec.cert.getIssuer(), ec.cert.getSerialNumber()), KeyAgreeRecipientInformation.class,
                new JceKeyAgreeEnvelopedRecipient(ec.kp.getPrivate()).setProvider("BC"), "EC");
            check(!issued.getSubjectPublicKeyInfo().equals(ec.cert.getSubjectPublicKeyInfo()),
                w + ": a new key, not the client's");
            System.out.println("CASE " + w + " OK");
        }
        // b. certIdentifier [1] issuerAndSerialNumber of the signing RSA certificate; ktri.
        {
            String w = "shroud-cert-id";
            Req q = new Req();
            q.der = signedSkg(q, rsa, RSA, shroudCertIdentifier(issuerAndSerial(rsa.cert)), false);
            Resp r = post(skg, q.der, w, false);
            openKey(w, q, r, new KeyTransRecipientId(rsa.cert.getIssuer(), rsa.cert.getSerialNumber()),
                KeyTransRecipientInformation.class, new JceKeyTransEnvelopedRecipient(rsa.kp.getPrivate()).setProvider("BC"),
                "RSA");
            System.out.println("CASE " + w + " OK");
        }
        // c. bareKey [2] { SPKI, ski } of a fresh P-256 key; kari with rKeyId = ski (SKGD-14).
        {
            String w = "shroud-bare-key";
            KeyPair bare = keyPair("EC");
            byte[] ski = new byte[20];
            RNG.nextBytes(ski); // any identifier the client chooses: the server must echo it as rid
            Req q = new Req();
            q.der = signedSkg(q, ec, P256, shroudBareKey(bare.getPublic(), ski), false);
            Resp r = post(skg, q.der, w, false);
            openKey(w, q, r, new KeyAgreeRecipientId(ski), KeyAgreeRecipientInformation.class,
                new JceKeyAgreeEnvelopedRecipient(bare.getPrivate()).setProvider("BC"), "EC");
            System.out.println("CASE " + w + " OK");
        }
        // d. ShroudWithSharedSecret in AuthenticatedData under another shared secret; pwri. An RA generates keys
        // only for requests signed with a certificate (it must know whom it vouches for): not run against one.
        if (RA) {
            System.out.println("CASE shroud-shared-secret NOT RUN (RA)");
        } else {
            String w = "shroud-shared-secret";
            Req q = new Req();
            q.subject = new X500Name("CN=" + CN_PWRI);
            byte[] pd = skgPkiData(q, ident, placeholder(q.subject, P256, sanExtensions(CN_PWRI)),
                shroudSharedSecret(shroudName), capabilities(true), false);
            q.der = authenticate(pd, ident, identSecret);
            Resp r = post(skg, q.der, w, false);
            JcePasswordEnvelopedRecipient pw = new JcePasswordEnvelopedRecipient(shroudSecret.toCharArray());
            pw.setProvider("BC").setPasswordConversionScheme(PasswordRecipient.PKCS5_SCHEME2_UTF8);
            openKey(w, q, r, new PasswordRecipientId(), PasswordRecipientInformation.class, pw, "EC");
            PasswordRecipientInformation pri = (PasswordRecipientInformation) new CMSEnvelopedData(
                TaggedContentInfo.getInstance(r.pr.getCmsSequence().getObjectAt(0)).getContentInfo())
                .getRecipientInfos().getRecipients().iterator().next();
            check(PKCSObjectIdentifiers.id_PBKDF2.equals(pri.getKeyDerivationAlgorithm().getAlgorithm())
                && PWRI_KEK.getId().equals(pri.getKeyEncryptionAlgOID()),
                w + ": pwri with PBKDF2 and id-alg-PWRI-KEK (SKGD-15)");
            boolean wrongFails;
            try {
                JcePasswordEnvelopedRecipient wrong = new JcePasswordEnvelopedRecipient((shroudSecret + "x").toCharArray());
                wrong.setProvider("BC").setPasswordConversionScheme(PasswordRecipient.PKCS5_SCHEME2_UTF8);
                pri.getContent(wrong);
                wrongFails = false;
            } catch (Exception e) {
                wrongFails = true;
            }
            check(wrongFails, w + ": a wrong protection secret does not open it");
            System.out.println("CASE " + w + " OK");
        }
        // e. archiveKey: absent (DEFAULT TRUE), then explicitly TRUE.
        {
            String w = "archive-key-default";
            Req q = new Req();
            q.der = signedSkg(q, ec, P256, shroudCertificate(ec.cert), null);
            expectSkgError(w, q, post(skg, q.der, w, false), ERR_ARCHIVE_NOT_SUPPORTED, ec.cert);
            w = "archive-key-true";
            Req q2 = new Req();
            q2.der = signedSkg(q2, ec, P256, shroudCertificate(ec.cert), true);
            expectSkgError(w, q2, post(skg, q2.der, w, false), ERR_ARCHIVE_NOT_SUPPORTED, ec.cert);
            System.out.println("CASE archive-key OK");
        }
        // f. a shared secret that is not the requester's (in AuthenticatedData, as d).
        if (RA) {
            System.out.println("CASE bad-shared-secret NOT RUN (RA)");
        } else {
            String w = "bad-shared-secret";
            Req q = new Req();
            q.subject = new X500Name("CN=" + CN_PWRI);
            byte[] pd = skgPkiData(q, ident, placeholder(q.subject, P256, sanExtensions(CN_PWRI)),
                shroudSharedSecret(otherName), capabilities(true), false);
            q.der = authenticate(pd, ident, identSecret);
            expectSkgError(w, q, post(skg, q.der, w, false), ERR_BAD_SHARED_SECRET, null);
            System.out.println("CASE " + w + " OK");
        }
        // g. certIdentifier naming no certificate of the SignedData.
        {
            String w = "bad-cert-id";
            byte[] ski = new byte[20];
            RNG.nextBytes(ski);
            Req q = new Req();
            q.der = signedSkg(q, rsa, RSA, shroudCertIdentifier(new SignerIdentifier(new DEROctetString(ski))), false);
            expectSkgError(w, q, post(skg, q.der, w, false), ERR_BAD_CERTIFICATE, rsa.cert);
            System.out.println("CASE " + w + " OK");
        }
    }

    public static void main(String[] args) throws Exception {
        Security.addProvider(new BouncyCastleProvider());
        if (args.length != 9) {
            System.err.println("usage: CmcSkgInterop HOST:PORT ROOT.pem USER PASSWORD IDENT IDENT_SECRET SHROUD_NAME"
                + " SHROUD_SECRET OTHER_NAME");
            System.exit(2);
        }
        oids();
        try {
            live(args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8]);
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
