// Bouncy Castle EST client interop against a running Estuary server (RFC 7030).
//
// Usage: java -cp bcprov.jar:bcpkix.jar:bctls.jar:bcutil.jar:. EstInterop HOST:PORT ROOT.pem USER PASSWORD [ra]
// The server is expected to have the demo labels: "" (Basic + client certificates), "digest"
// (HTTP Digest only) and "devices" (with /csrattrs). With "ra", the server is an Estuary RA
// (RA mode) with its label-less path only, /serverkeygen on: the label-specific steps (2, 4)
// are left out and /serverkeygen goes to the label-less path.
// Every check asserts; any failure exits non-zero. Built with Debian's Bouncy Castle 1.72.
import java.io.FileInputStream;
import java.math.BigInteger;
import java.net.Socket;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.SecureRandom;
import java.security.Security;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.util.Arrays;

import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509TrustManager;

import org.bouncycastle.asn1.ASN1ObjectIdentifier;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.est.CACertsResponse;
import org.bouncycastle.est.CSRRequestResponse;
import org.bouncycastle.est.ESTAuth;
import org.bouncycastle.est.ESTException;
import org.bouncycastle.est.ESTService;
import org.bouncycastle.est.EnrollmentResponse;
import org.bouncycastle.est.HttpAuth;
import org.bouncycastle.est.jcajce.ChannelBindingProvider;
import org.bouncycastle.est.jcajce.JcaHttpAuthBuilder;
import org.bouncycastle.est.jcajce.JsseESTServiceBuilder;
import org.bouncycastle.jce.provider.BouncyCastleProvider;
import org.bouncycastle.jsse.BCSSLSocket;
import org.bouncycastle.jsse.provider.BouncyCastleJsseProvider;
import org.bouncycastle.operator.ContentSigner;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.PKCS10CertificationRequestBuilder;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;

public class EstInterop {
    static String server;
    static X509TrustManager[] trust;
    /** The same trust anchor through BCJSSE's own trust manager (SunJSSE's cannot check BCJSSE sessions). */
    static X509TrustManager[] bcTrust;
    static X509Certificate root;
    static int checks = 0;
    /** Against an Estuary RA: only the label-less path. */
    static boolean ra = false;

    static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError("FAILED: " + what);
        }
        checks++;
        System.out.println("ok: " + what);
    }

    static KeyPair p256() throws Exception {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC", "BC");
        g.initialize(new ECGenParameterSpec("secp256r1"), new SecureRandom());
        return g.generateKeyPair();
    }

    static PKCS10CertificationRequestBuilder csrBuilder(String cn, KeyPair kp) {
        return new JcaPKCS10CertificationRequestBuilder(new X500Name("CN=" + cn), kp.getPublic());
    }

    static ContentSigner signer(KeyPair kp) throws Exception {
        return new JcaContentSignerBuilder("SHA256withECDSA").setProvider("BC").build(kp.getPrivate());
    }

    static JsseESTServiceBuilder builder(String label) {
        return builder(label, trust);
    }

    static JsseESTServiceBuilder builder(String label, X509TrustManager[] tms) {
        JsseESTServiceBuilder b = new JsseESTServiceBuilder(server, tms);
        if (label != null) {
            b.withLabel(label);
        }
        b.withTimeout(20000);
        return b;
    }

    static X509CertificateHolder single(EnrollmentResponse r, String what) {
        check(r.isCompleted(), what + ": enrollment completed (200, not 202)");
        X509CertificateHolder[] certs = ESTService.storeToArray(r.getStore());
        check(certs.length == 1, what + ": exactly one certificate returned");
        return certs[0];
    }

    static void checkIssued(X509CertificateHolder c, String cn, KeyPair kp, String what) throws Exception {
        check(c.getSubject().equals(new X500Name("CN=" + cn)), what + ": subject " + c.getSubject());
        check(Arrays.equals(c.getSubjectPublicKeyInfo().getEncoded(), kp.getPublic().getEncoded()),
            what + ": certificate carries the requested public key");
        X509Certificate x = new JcaX509CertificateConverter().setProvider("BC").getCertificate(c);
        x.checkValidity();
        check(!x.getIssuerX500Principal().equals(x.getSubjectX500Principal()), what + ": issued by the CA");
    }

    /** A KeyManager presenting `cert` (and the rest of `chain`) with `kp`'s private key. */
    static KeyManager[] clientKeys(KeyPair kp, X509Certificate[] chain) throws Exception {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        ks.load(null, null);
        char[] pw = "interop".toCharArray();
        ks.setKeyEntry("client", kp.getPrivate(), pw, chain);
        KeyManagerFactory kmf = KeyManagerFactory.getInstance("PKIX");
        kmf.init(ks, pw);
        return kmf.getKeyManagers();
    }

    /** tls-unique of the BCJSSE connection (RFC 5929), optionally corrupted. */
    static ChannelBindingProvider tlsUnique(final boolean corrupt, final byte[][] seen) {
        return new ChannelBindingProvider() {
            public boolean canAccessChannelBinding(Socket sock) {
                return sock instanceof BCSSLSocket;
            }

            public byte[] getChannelBinding(Socket sock, String type) {
                byte[] b = ((BCSSLSocket) sock).getConnection().getChannelBinding(type);
                if (b == null) {
                    throw new IllegalStateException("no " + type + " binding on this connection");
                }
                seen[0] = b.clone();
                if (corrupt) {
                    b = b.clone();
                    b[0] ^= 1;
                }
                return b;
            }
        };
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 4 && !(args.length == 5 && args[4].equals("ra"))) {
            System.err.println("usage: EstInterop HOST:PORT ROOT.pem USER PASSWORD [ra]");
            System.exit(2);
        }
        ra = args.length == 5;
        server = args[0];
        String user = args[2];
        char[] password = args[3].toCharArray();
        Security.addProvider(new BouncyCastleProvider());
        Security.addProvider(new BouncyCastleJsseProvider());

        try (FileInputStream in = new FileInputStream(args[1])) {
            root = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
        KeyStore ts = KeyStore.getInstance(KeyStore.getDefaultType());
        ts.load(null, null);
        ts.setCertificateEntry("root", root);
        TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
        tmf.init(ts);
        trust = new X509TrustManager[] {(X509TrustManager) tmf.getTrustManagers()[0]};
        TrustManagerFactory bcTmf = TrustManagerFactory.getInstance("PKIX", "BCJSSE");
        bcTmf.init(ts);
        bcTrust = new X509TrustManager[] {(X509TrustManager) bcTmf.getTrustManagers()[0]};

        try {
            run(user, password);
        } catch (Throwable t) {
            System.out.println("FAILED after " + checks + " checks: " + t);
            t.printStackTrace(System.out);
            System.exit(1);
        }
        System.out.println("ALL OK: " + checks + " checks");
    }

    static void run(String user, char[] password) throws Exception {
        // 1. /cacerts: the chain, trusted through our explicit trust anchor.
        CACertsResponse ca = builder(null).build().getCACerts();
        X509CertificateHolder[] caCerts = ESTService.storeToArray(ca.getCertificateStore());
        check(caCerts.length >= 2, "cacerts: issuing CA and root (" + caCerts.length + " certificates)");
        boolean hasRoot = false;
        for (X509CertificateHolder c : caCerts) {
            hasRoot |= Arrays.equals(c.getEncoded(), root.getEncoded());
        }
        check(hasRoot, "cacerts contains the trust anchor");
        check(ca.isTrusted(), "cacerts came over a server-authenticated connection");
        X509Certificate issuing = null;
        for (X509CertificateHolder c : caCerts) {
            if (!Arrays.equals(c.getEncoded(), root.getEncoded())) {
                issuing = new JcaX509CertificateConverter().setProvider("BC").getCertificate(c);
            }
        }

        // 2. /csrattrs of the devices label.
        if (!ra) {
            CSRRequestResponse attrs = builder("devices").build().getCSRAttributes();
            check(attrs.hasAttributesResponse() && !attrs.getAttributesResponse().isEmpty(), "csrattrs: non-empty");
            check(attrs.getAttributesResponse().hasRequirement(new ASN1ObjectIdentifier("1.2.840.10045.4.3.2")),
                "csrattrs: ecdsa-with-SHA256 listed");
        }

        // 3. /simpleenroll with HTTP Basic.
        KeyPair kp1 = p256();
        PKCS10CertificationRequest csr1 = csrBuilder("bc-basic.example", kp1).build(signer(kp1));
        X509CertificateHolder c1 = single(
            builder(null).build().simpleEnroll(false, csr1, new HttpAuth(user, password)), "basic enroll");
        checkIssued(c1, "bc-basic.example", kp1, "basic enroll");
        try {
            builder(null).build().simpleEnroll(false, csr1, new HttpAuth(user, "wrong-password".toCharArray()));
            check(false, "a wrong Basic password is refused");
        } catch (ESTException e) {
            check(e.getStatusCode() == 401, "a wrong Basic password gets 401 (got " + e.getStatusCode() + ")");
        }

        // 4. /simpleenroll with HTTP Digest on the Digest-only label (BC answers the 401).
        if (!ra) {
            digestSteps(user, password);
        }

        // 5. /simplereenroll (rekey) authenticated by the issued certificate as TLS client cert.
        rekey(c1, kp1, issuing);

        // 6. /simpleenroll with PoP linking: tls-unique over BCJSSE, TLS 1.2 (EST-52); then the
        // same with a corrupted binding, which the server must reject (EST-54).
        popSteps(user, password);

        // 7. /serverkeygen (RFC 7030 §4.4).
        serverKeyGen(user, password, issuing);
    }

    static void digestSteps(String user, char[] password) throws Exception {
        KeyPair kp2 = p256();
        PKCS10CertificationRequest csr2 = csrBuilder("bc-digest.example", kp2).build(signer(kp2));
        ESTAuth digest = new JcaHttpAuthBuilder("estuary", user, password)
            .setNonceGenerator(new SecureRandom()).setProvider("BC").build();
        X509CertificateHolder c2 = single(builder("digest").build().simpleEnroll(false, csr2, digest), "digest enroll");
        checkIssued(c2, "bc-digest.example", kp2, "digest enroll");
        try {
            ESTAuth bad = new JcaHttpAuthBuilder("estuary", user, "wrong-password".toCharArray())
                .setNonceGenerator(new SecureRandom()).setProvider("BC").build();
            builder("digest").build().simpleEnroll(false, csr2, bad);
            check(false, "a wrong Digest password is refused");
        } catch (ESTException e) {
            check(e.getStatusCode() == 401, "a wrong Digest password gets 401 (got " + e.getStatusCode() + ")");
        }
        // A Basic-only client cannot answer the Digest challenge: no certificate (BC gives up
        // with an error of its own, without a status).
        boolean issued = false;
        try {
            builder("digest").build().simpleEnroll(false, csr2, new HttpAuth(user, password));
            issued = true;
        } catch (Exception e) {
            System.out.println("   (Basic client on the Digest label: " + e.getMessage() + ")");
        }
        check(!issued, "Basic is refused on the Digest-only label");
    }

    static void rekey(X509CertificateHolder c1, KeyPair kp1, X509Certificate issuing) throws Exception {
        X509Certificate cert1 = new JcaX509CertificateConverter().setProvider("BC").getCertificate(c1);
        KeyPair kp3 = p256();
        PKCS10CertificationRequest csr3 = csrBuilder("bc-basic.example", kp3).build(signer(kp3));
        JsseESTServiceBuilder rb = builder(null);
        rb.withKeyManagers(clientKeys(kp1, new X509Certificate[] {cert1, issuing}));
        X509CertificateHolder c3 = single(rb.build().simpleEnroll(true, csr3, null), "reenroll");
        checkIssued(c3, "bc-basic.example", kp3, "reenroll");
        check(!c3.getSerialNumber().equals(c1.getSerialNumber()), "reenroll: a new serial number");
    }

    static void popSteps(String user, char[] password) throws Exception {
        for (boolean corrupt : new boolean[] {false, true}) {
            KeyPair kp = p256();
            byte[][] seen = new byte[1][];
            JsseESTServiceBuilder pb = builder(null, bcTrust);
            pb.withProvider(new BouncyCastleJsseProvider());
            pb.withTLSVersion("TLSv1.2");
            pb.withChannelBindingProvider(tlsUnique(corrupt, seen));
            ESTService svc = pb.build();
            String cn = corrupt ? "bc-pop-bad.example" : "bc-pop.example";
            try {
                EnrollmentResponse r = svc.simpleEnrollPoP(false, csrBuilder(cn, kp), signer(kp), new HttpAuth(user, password));
                check(!corrupt, "only the true binding enrolls");
                checkIssued(single(r, "pop enroll"), cn, kp, "pop enroll");
                check(seen[0] != null && seen[0].length == 12, "tls-unique was 12 bytes (TLS 1.2 Finished)");
            } catch (ESTException e) {
                if (!corrupt) {
                    throw e;
                }
                check(e.getStatusCode() == 400, "a corrupted tls-unique gets 400 (got " + e.getStatusCode() + ")");
                check(seen[0] != null, "the binding was read from the connection");
            }
        }

    }

    /** /serverkeygen on the demo label (an RA: its label-less path): the CSR's key only names
     * the type; BC parses the multipart/mixed answer and returns the PKCS#8 key with the
     * certificate. */
    static void serverKeyGen(String user, char[] password, X509Certificate issuing) throws Exception {
        KeyPair hint = p256();
        PKCS10CertificationRequest csr7 = csrBuilder("bc-skg.example", hint).build(signer(hint));
        EnrollmentResponse r7 = builder(ra ? null : "demo").build()
            .simpleEnrollWithServersideCreation(csr7, new HttpAuth(user, password));
        X509CertificateHolder c7 = single(r7, "serverkeygen");
        check(c7.getSubject().equals(new X500Name("CN=bc-skg.example")), "serverkeygen: subject " + c7.getSubject());
        check(r7.getPrivateKeyInfo() != null, "serverkeygen: a private key came back");
        java.security.PrivateKey priv = new org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter()
            .setProvider("BC").getPrivateKey(r7.getPrivateKeyInfo());
        check("EC".equals(priv.getAlgorithm()) || "ECDSA".equals(priv.getAlgorithm()),
            "serverkeygen: an EC key, as the CSR's key asked (" + priv.getAlgorithm() + ")");
        check(!Arrays.equals(c7.getSubjectPublicKeyInfo().getEncoded(), hint.getPublic().getEncoded()),
            "serverkeygen: a new key, not the CSR's");
        // The private key belongs to the certificate: sign with it, verify with the certificate.
        java.security.Signature sig = java.security.Signature.getInstance("SHA256withECDSA", "BC");
        sig.initSign(priv);
        sig.update(new byte[] {1, 2, 3});
        byte[] s7 = sig.sign();
        X509Certificate cert7 = new JcaX509CertificateConverter().setProvider("BC").getCertificate(c7);
        sig.initVerify(cert7.getPublicKey());
        sig.update(new byte[] {1, 2, 3});
        check(sig.verify(s7), "serverkeygen: the private key matches the certificate");
        cert7.verify(issuing.getPublicKey());
        check(true, "serverkeygen: the certificate is signed by the issuing CA");
    }
}
