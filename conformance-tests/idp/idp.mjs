// A real OpenID provider for Healthbook's security tests (oidc-provider 9, ESM).
// Listens on 127.0.0.1:$IDP_PORT only. Issues RFC 9068 JWT access tokens for the FHIR
// server at $FHIR_AUD (and for a second resource, to test a wrong audience).
//
// Test conveniences, all through the client_credentials grant of the client "tester"
// (oidc-provider keeps only the grant's own parameters, so the extras travel as headers):
// - the scopes granted are the scopes asked for (real deployments use an allow-list);
// - `X-Test-Patient: <id>` and `X-Test-FhirUser: <url>` add the SMART launch-context claims;
// - `X-Test-Ttl: <seconds>` shortens the token's lifetime (expiry tests);
// - `X-Test-Alg: RS256` signs with the RSA key instead of the EC one;
// - `X-Test-Format: opaque` issues an opaque token (for RFC 7662 introspection by the
//   client "fhir-server");
// - the `resource` parameter picks the audience (http://other.example/fhir: a wrong one).
//
// A backend service, "backend-jwt" (SMART Backend Services: the ministry's PHR system),
// authenticates with a private_key_jwt client assertion signed ES384; the private key is
// written to $BACKEND_KEY_FILE for the client script backend-client.mjs.
//
// A patient-facing app, "phr-app", uses the authorization code flow with PKCE (S256):
// /interaction/:uid logs in the account named by `login_hint` and consents headlessly (tests
// only). The account is a person whose own Patient id is the account id: the access token
// carries `patient` (SMART launch context) and the ID token `fhirUser`.
import Provider from 'oidc-provider';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';

const PORT = Number(process.env.IDP_PORT || 4000);
const ISSUER = `http://127.0.0.1:${PORT}`;
// The FHIR server's base URL (the audience); tests set it once the server is up
// (POST /test/audience?aud=...), because the server needs the issuer URL first.
let FHIR = process.env.FHIR_AUD || 'http://127.0.0.1:8080/fhir';
const OTHER = 'http://other.example/fhir';

const jwkOf = (key, kid, alg) => ({ ...key.export({ format: 'jwk' }), kid, alg, use: 'sig' });
// New keys with new kids at every start: restarting the IdP is a key rotation.
const run = randomUUID().slice(0, 8);
const es256 = jwkOf(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, `es256-${run}`, 'ES256');
const rs256 = jwkOf(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, `rs256-${run}`, 'RS256');
const backend = jwkOf(generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey, `backend-${run}`, 'ES384');
if (process.env.BACKEND_KEY_FILE) writeFileSync(process.env.BACKEND_KEY_FILE, JSON.stringify(backend));
const { d: _private, ...backendPublic } = backend;

const provider = new Provider(ISSUER, {
  jwks: { keys: [es256, rs256] },
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  // SMART Backend Services assertions are ES384 or RS384.
  enabledJWA: { clientAuthSigningAlgValues: ['ES384', 'RS384', 'ES256', 'RS256'] },
  scopes: ['openid', 'offline_access', 'fhirUser', 'launch/patient'],
  claims: { openid: ['sub'], fhirUser: ['fhirUser'] },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, fhirUser: `Patient/${id}` }),
  }),
  pkce: { required: () => true },
  clients: [
    {
      client_id: 'tester', client_secret: 'tester-secret', grant_types: ['client_credentials'],
      response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic',
    },
    // A backend service (SMART Backend Services, private_key_jwt).
    {
      client_id: 'backend-jwt', grant_types: ['client_credentials'], response_types: [],
      redirect_uris: [], token_endpoint_auth_method: 'private_key_jwt',
      token_endpoint_auth_signing_alg: 'ES384', jwks: { keys: [backendPublic] },
    },
    // A public patient-facing app (PKCE).
    {
      client_id: 'phr-app', token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'],
      redirect_uris: ['http://127.0.0.1:9/callback'],
    },
    // The FHIR server itself, as the caller of the introspection endpoint.
    {
      client_id: 'fhir-server', client_secret: 'fhir-server-secret', grant_types: [],
      response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  extraTokenClaims: async (ctx, token) => {
    const claims = {};
    if (ctx.get('x-test-patient')) claims.patient = ctx.get('x-test-patient');
    else if (token.clientId === 'phr-app' && token.accountId) claims.patient = token.accountId;
    if (ctx.get('x-test-fhiruser')) claims.fhirUser = ctx.get('x-test-fhiruser');
    return claims;
  },
  ttl: {
    ClientCredentials: (ctx) => Number(ctx.get('x-test-ttl') || 300),
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => FHIR,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resource) => ({
        // client_credentials: the scopes asked for; authorization code: what the app asked
        // for at /auth (at the token exchange no scope is sent, so the allow-list applies).
        scope: String(ctx.oidc.params.scope || 'patient/*.rs patient/*.read patient/*.cruds'),
        audience: resource === OTHER ? OTHER : FHIR,
        accessTokenFormat: ctx.get('x-test-format') === 'opaque' ? 'opaque' : 'jwt',
        accessTokenTTL: Number(ctx.get('x-test-ttl') || 300),
        jwt: { sign: { alg: ctx.get('x-test-alg') || 'ES256' } },
      }),
    },
  },
});
provider.proxy = false;
// How often the key set was fetched (GET /test/jwks-fetches), to test the resource server's
// rate limit on unknown kids.
let jwksFetches = 0;
provider.use(async (ctx, next) => {
  if (ctx.path === '/test/audience' && ctx.method === 'POST') {
    FHIR = String(ctx.query.aud);
    ctx.body = { aud: FHIR };
    return;
  }
  if (ctx.path.startsWith('/interaction/')) {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    let result;
    if (details.prompt.name === 'login') {
      result = { login: { accountId: String(details.params.login_hint || 'anonymous') } };
    } else {
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      const missing = details.prompt.details;
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      result = { consent: { grantId: await grant.save() } };
    }
    ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: true }));
    return;
  }
  if (ctx.path === '/jwks') jwksFetches += 1;
  if (ctx.path === '/test/jwks-fetches') {
    ctx.body = { count: jwksFetches };
    return;
  }
  await next();
});
provider.listen(PORT, '127.0.0.1', () => console.log(`IdP ${ISSUER} pid=${process.pid}`));
process.on('SIGTERM', () => process.exit(0));
