#!/usr/bin/env bash
# Makes a private CA and the server's serving certificate for overlays/self-signed, without cert-manager.
#
#   k8s/overlays/self-signed/generate-certs.sh [OUTPUT_DIR]
#
# Writes into OUTPUT_DIR (default: this script's directory, i.e. the overlay):
#   certs/ca.crt, certs/ca.key     the CA (keep ca.key private; it is needed only to re-issue)
#   certs/tls.crt, certs/tls.key   the serving certificate, for the Secret tidegauge-serving-cert
#   api-service-ca-bundle.yaml     the APIServices' patch: caBundle = base64 of ca.crt, on one line
# Then: kubectl apply -k k8s/overlays/self-signed
#
# Re-run it before the serving certificate expires (DAYS, default 365) and apply again; an existing CA
# is reused, so the caBundle does not change. Needs only openssl. SERVICE and NAMESPACE default to
# tidegauge; they must match the Service the APIService points to.
set -euo pipefail

out_dir="${1:-$(cd "$(dirname "$0")" && pwd)}"
service="${SERVICE:-tidegauge}"
namespace="${NAMESPACE:-tidegauge}"
days="${DAYS:-365}"
ca_days="${CA_DAYS:-3650}"

command -v openssl >/dev/null || { echo "generate-certs.sh: openssl is required" >&2; exit 1; }
certs="$out_dir/certs"
mkdir -p "$certs"
umask 077
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cat >"$work/openssl.cnf" <<CONFIG
[req]
distinguished_name = name
prompt = no
[name]
CN = placeholder
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[serving]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:${service}.${namespace}.svc, DNS:${service}.${namespace}.svc.cluster.local, DNS:${service}.${namespace}, DNS:${service}
authorityKeyIdentifier = keyid
subjectKeyIdentifier = hash
CONFIG

if [[ ! -s "$certs/ca.key" || ! -s "$certs/ca.crt" ]]; then
  openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days "$ca_days" \
    -config "$work/openssl.cnf" -extensions ca -subj "/CN=${service}-ca" \
    -keyout "$certs/ca.key" -out "$certs/ca.crt" 2>/dev/null
  echo "created the CA: $certs/ca.crt"
fi

openssl req -new -newkey rsa:2048 -nodes -sha256 -config "$work/openssl.cnf" \
  -subj "/CN=${service}.${namespace}.svc" -keyout "$certs/tls.key" -out "$work/serving.csr" 2>/dev/null
openssl x509 -req -sha256 -days "$days" -in "$work/serving.csr" \
  -CA "$certs/ca.crt" -CAkey "$certs/ca.key" -CAcreateserial -CAserial "$work/ca.srl" \
  -extfile "$work/openssl.cnf" -extensions serving -out "$certs/tls.crt" 2>/dev/null
echo "created the serving certificate for ${service}.${namespace}.svc: $certs/tls.crt"

ca_bundle="$(openssl base64 -A -in "$certs/ca.crt")"
cat >"$out_dir/api-service-ca-bundle.yaml" <<PATCH
# Written by generate-certs.sh: base64 of certs/ca.crt, on one line. The kustomization applies it to
# every APIService (external and custom metrics), whatever the name below.
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.external.metrics.k8s.io
spec:
  caBundle: ${ca_bundle}
PATCH
chmod 0644 "$out_dir/api-service-ca-bundle.yaml" "$certs/ca.crt" "$certs/tls.crt"
echo "wrote $out_dir/api-service-ca-bundle.yaml"
