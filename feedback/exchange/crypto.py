"""The national-style link's cryptography (SM3 digests, SM2 signatures, SM4-CBC payloads),
shared by the national-json adapter and the fake provincial gateway.

Built on PyPI ``gmssl`` (pure Python), with three corrections from /work/shared/PITFALLS.md:
the signing nonce comes from :mod:`secrets` (gmssl's own uses :mod:`random`), a public key's
``04`` prefix is cut here (gmssl's ``lstrip("04")`` eats leading zeros), and a signature is
SM3withSM2 with the default signer id, DER-encoded hex (what BouncyCastle and OpenSSL write).
SM3 uses OpenSSL through :mod:`hashlib` when it offers ``sm3``, and SM4-CBC uses the same
libcrypto through :mod:`ctypes` when it has ``EVP_sm4_cbc`` and passes the standard's test
vector at import: the same bytes as gmssl (the tests compare them), some hundred times faster,
which matters for 200-item payloads (gmssl manages about 240 KB/s). gmssl is used otherwise.
"""
from __future__ import annotations

import base64
import binascii
import ctypes
import ctypes.util
import hashlib
import os
import secrets

from gmssl import func, sm2, sm3, sm4

CURVE = sm2.default_ecc_table
_N = int(CURVE["n"], 16)
_DEFAULT_ID = b"1234567812345678"  # GM/T 0009: the signer id when none is agreed
_HASHLIB_SM3 = "sm3" in hashlib.algorithms_available


class CryptoError(ValueError):
    """A key, a ciphertext or a signature that cannot be used."""


def sm3_hex(data: bytes) -> str:
    """The SM3 digest of ``data`` as 64 lowercase hex digits."""
    if _HASHLIB_SM3:
        return hashlib.new("sm3", data).hexdigest()
    return sm3.sm3_hash(func.bytes_to_list(data))


def token_sign(app_key: str, timestamp: str, app_secret: str) -> str:
    """The ``sign`` of a token request: SM3 hex of app key + timestamp + app secret."""
    return sm3_hex(f"{app_key}{timestamp}{app_secret}".encode("utf-8"))


def normalize_public_key(public_hex: str) -> str:
    """An SM2 public key as 128 hex digits (x‖y), without the ``04`` prefix of the
    uncompressed form; :class:`CryptoError` when it is not one."""
    key = (public_hex or "").strip().lower()
    if len(key) == 130 and key.startswith("04"):
        key = key[2:]
    try:
        bytes.fromhex(key)
    except ValueError:
        raise CryptoError("SM2 公钥不是十六进制") from None
    if len(key) != 128:
        raise CryptoError("SM2 公钥应为 128 位十六进制（可带 04 前缀）")
    return key


def _private_int(private_hex: str) -> int:
    try:
        d = int((private_hex or "").strip(), 16)
    except ValueError:
        raise CryptoError("SM2 私钥不是十六进制") from None
    if not 1 <= d < _N - 1:
        raise CryptoError("SM2 私钥超出范围")
    return d


def _crypt(private_hex: str, public_hex: str) -> sm2.CryptSM2:
    crypt = sm2.CryptSM2(private_key=private_hex, public_key="", asn1=True)
    crypt.public_key = public_hex  # set here: the constructor's lstrip("04") corrupts some keys
    return crypt


def sm2_public_key(private_hex: str) -> str:
    """The public key (128 hex digits) of an SM2 private key: d·G."""
    d = _private_int(private_hex)
    return _crypt(private_hex, "")._kg(d, CURVE["g"])


def generate_sm2_keypair() -> tuple[str, str]:
    """A fresh SM2 key pair ``(private hex, public hex)`` from :mod:`secrets`."""
    d = secrets.randbelow(_N - 2) + 1
    private_hex = f"{d:064x}"
    return private_hex, sm2_public_key(private_hex)


def _digest(data: bytes, public_hex: str) -> bytes:
    """e = SM3(Z ‖ M), Z = SM3(ENTL ‖ ID ‖ a ‖ b ‖ xG ‖ yG ‖ xA ‖ yA): what SM3withSM2 signs."""
    z_input = (len(_DEFAULT_ID) * 8).to_bytes(2, "big") + _DEFAULT_ID + bytes.fromhex(
        CURVE["a"] + CURVE["b"] + CURVE["g"] + public_hex)
    z = bytes.fromhex(sm3_hex(z_input))
    return bytes.fromhex(sm3_hex(z + data))


def sm2_sign(data: bytes, private_hex: str, public_hex: str) -> str:
    """SM3withSM2 signature of ``data`` (default signer id), DER-encoded, as hex. ``public_hex``
    is the signer's own public key: it is part of the signed digest."""
    _private_int(private_hex)
    public_hex = normalize_public_key(public_hex)
    crypt = _crypt(private_hex, public_hex)
    e = _digest(data, public_hex)
    while True:  # gmssl gives None for the rare nonce with r = 0, r + k = n or s = 0
        signature = crypt.sign(e, f"{secrets.randbelow(_N - 1) + 1:064x}")
        if signature:
            return signature


def sm2_verify(signature_hex: str, data: bytes, public_hex: str) -> bool:
    """Whether ``signature_hex`` (DER hex, as :func:`sm2_sign` writes) is the SM3withSM2
    signature of ``data`` by the holder of ``public_hex``. Never raises."""
    try:
        public_hex = normalize_public_key(public_hex)
        bytes.fromhex(signature_hex)
        return bool(_crypt("", public_hex).verify(signature_hex, _digest(data, public_hex)))
    except Exception:  # a malformed signature makes gmssl's DER decoder raise anything
        return False


def sm4_key(key_hex: str) -> bytes:
    """A 128-bit SM4 key from 32 hex digits; :class:`CryptoError` otherwise."""
    try:
        key = bytes.fromhex((key_hex or "").strip())
    except ValueError:
        raise CryptoError("SM4 密钥不是十六进制") from None
    if len(key) != 16:
        raise CryptoError("SM4 密钥应为 32 位十六进制")
    return key


def _load_libcrypto() -> ctypes.CDLL | None:
    """libcrypto's SM4-CBC, or None where it is missing (the gmssl path is then used)."""
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("crypto") or "libcrypto.so.3")
        lib.EVP_sm4_cbc.restype = ctypes.c_void_p
        lib.EVP_sm4_cbc.argtypes = []
        lib.EVP_CIPHER_CTX_new.restype = ctypes.c_void_p
        lib.EVP_CIPHER_CTX_new.argtypes = []
        lib.EVP_CIPHER_CTX_free.restype = None
        lib.EVP_CIPHER_CTX_free.argtypes = [ctypes.c_void_p]
        lib.EVP_CipherInit_ex.restype = ctypes.c_int
        lib.EVP_CipherInit_ex.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p,
                                          ctypes.c_char_p, ctypes.c_int]
        lib.EVP_CipherUpdate.restype = ctypes.c_int
        lib.EVP_CipherUpdate.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int),
                                         ctypes.c_char_p, ctypes.c_int]
        lib.EVP_CipherFinal_ex.restype = ctypes.c_int
        lib.EVP_CipherFinal_ex.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
        if not lib.EVP_sm4_cbc():
            return None
    except (OSError, AttributeError):
        return None
    return lib


def _openssl_cbc(lib: ctypes.CDLL, key: bytes, iv: bytes, data: bytes, encrypt: bool) -> bytes:
    """SM4-CBC with PKCS#7 padding in libcrypto (which, unlike gmssl, checks the padding)."""
    ctx = lib.EVP_CIPHER_CTX_new()
    if not ctx:
        raise CryptoError("libcrypto: EVP_CIPHER_CTX_new failed")
    try:
        if lib.EVP_CipherInit_ex(ctx, lib.EVP_sm4_cbc(), None, key, iv, 1 if encrypt else 0) != 1:
            raise CryptoError("libcrypto: SM4 init failed")
        out = ctypes.create_string_buffer(len(data) + 32)
        written, final = ctypes.c_int(0), ctypes.c_int(0)
        if lib.EVP_CipherUpdate(ctx, ctypes.addressof(out), ctypes.byref(written), data, len(data)) != 1:
            raise CryptoError("SM4 运算失败")
        if lib.EVP_CipherFinal_ex(ctx, ctypes.addressof(out) + written.value, ctypes.byref(final)) != 1:
            raise CryptoError("SM4 解密失败（密钥不对或密文损坏）")
        return out.raw[:written.value + final.value]
    finally:
        lib.EVP_CIPHER_CTX_free(ctx)


def _checked_libcrypto() -> ctypes.CDLL | None:
    """libcrypto if it gives GB/T 32907's example ciphertext (key = plaintext = 0123…3210)."""
    lib = _load_libcrypto()
    if lib is None:
        return None
    sample = bytes.fromhex("0123456789abcdeffedcba9876543210")
    try:
        first = _openssl_cbc(lib, sample, bytes(16), sample, True)[:16]
    except CryptoError:
        return None
    return lib if first.hex() == "681edf34d206965e86b3e94f536e4246" else None


_LIBCRYPTO = _checked_libcrypto()


def sm4_cbc(key: bytes, iv: bytes, data: bytes, encrypt: bool) -> bytes:
    """SM4-CBC with PKCS#7 padding, in libcrypto when it can, else in gmssl."""
    if _LIBCRYPTO is not None:
        return _openssl_cbc(_LIBCRYPTO, key, iv, data, encrypt)
    cipher = sm4.CryptSM4()
    cipher.set_key(key, sm4.SM4_ENCRYPT if encrypt else sm4.SM4_DECRYPT)
    return cipher.crypt_cbc(iv, data)


def sm4_encrypt(plain: bytes, key: bytes) -> str:
    """SM4-CBC with PKCS#7 padding under a random IV; base64 of IV ‖ ciphertext."""
    iv = os.urandom(16)
    return base64.b64encode(iv + sm4_cbc(key, iv, plain, True)).decode("ascii")


def sm4_decrypt(text: str, key: bytes) -> bytes:
    """The plaintext of :func:`sm4_encrypt`'s output; :class:`CryptoError` when it cannot be.
    There is no MAC, and gmssl does not even check the padding, so a wrong key may yield
    garbage: the caller must parse what comes out."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise CryptoError("密文不是 base64") from None
    if len(raw) < 32 or len(raw) % 16:
        raise CryptoError("密文长度不对")
    return sm4_cbc(key, raw[:16], raw[16:], False)
