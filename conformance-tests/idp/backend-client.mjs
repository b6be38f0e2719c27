// A SMART Backend Services client (hl7.org/fhir/smart-app-launch/backend-services.html):
// signs a client assertion {iss = sub = client_id, aud = token URL, exp <= 5 min, jti} with
// its private key (ES384) and asks for a client_credentials token.
// Usage: node backend-client.mjs <token URL> <scope> <private JWK file>
// Prints the token endpoint's JSON answer; exits 1 when it is not a 200.
import { SignJWT, importJWK } from 'jose';
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';

const [tokenUrl, scope, keyFile] = process.argv.slice(2);
const jwk = JSON.parse(readFileSync(keyFile, 'utf8'));
const key = await importJWK(jwk, jwk.alg);
const now = Math.floor(Date.now() / 1000);
const assertion = await new SignJWT({})
  .setProtectedHeader({ alg: jwk.alg, kid: jwk.kid, typ: 'JWT' })
  .setIssuer('backend-jwt').setSubject('backend-jwt').setAudience(tokenUrl)
  .setJti(randomUUID()).setIssuedAt(now).setExpirationTime(now + 300)
  .sign(key);
const res = await fetch(tokenUrl, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
  body: new URLSearchParams({
    grant_type: 'client_credentials', scope,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
  }),
});
console.log(await res.text());
process.exit(res.status === 200 ? 0 : 1);
