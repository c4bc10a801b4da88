"""activation.hash(): one value normalized and hashed as a distribution would send it."""

from __future__ import annotations

import hashlib
import unittest

import activation


class HashTest(unittest.TestCase):
    def test_meta_reference_email(self) -> None:
        result = activation.hash("meta", "email", "  Mary@Example.com ")
        self.assertTrue(result.ok)
        self.assertEqual(result.normalized, "mary@example.com")
        self.assertEqual(result.sha256, "f1904cf1a9d73a55fa5de0ac823c4403ded71afd4c3248d00bdcd0866552bb79")
        self.assertEqual(result.wire_value, result.sha256)

    def test_phone_uses_the_row_country(self) -> None:
        meta = activation.hash("meta", "phone", "020 7946 0018", country="United Kingdom")
        self.assertEqual(meta.normalized, "442079460018")
        google = activation.hash("google", "phone", "020 7946 0018", default_region="GB")
        self.assertEqual(google.normalized, "+442079460018")
        self.assertEqual(google.sha256, hashlib.sha256(b"+442079460018").hexdigest())

    def test_gmail_rule_can_be_switched_off(self) -> None:
        on = activation.hash("google", "email", "J.Doe+news@gmail.com")
        off = activation.hash("google", "email", "J.Doe+news@gmail.com", google_canonicalize_gmail=False)
        self.assertEqual(on.normalized, "jdoe@gmail.com")
        self.assertEqual(off.normalized, "j.doe+news@gmail.com")

    def test_unusable_value_has_a_reason(self) -> None:
        result = activation.hash("meta", "email", "no at sign")
        self.assertFalse(result.ok)
        self.assertIsNone(result.sha256)
        self.assertIsNone(result.wire_value)
        self.assertEqual(result.error.code, "invalid_email")
        self.assertTrue(result.error.message)

    def test_bytes_with_nul_and_invalid_utf8(self) -> None:
        result = activation.hash("meta", "email", b"a\x00b\xff@example.com")
        self.assertFalse(result.ok)
        self.assertIn(result.error.code, {"control_character", "invalid_utf8"})

    def test_unknown_platform_and_field_raise(self) -> None:
        with self.assertRaises(activation.InvalidArgumentError) as caught:
            activation.hash("myspace", "email", "a@b.com")
        self.assertIn('unknown platform "myspace"', str(caught.exception))
        with self.assertRaises(activation.InvalidArgumentError) as caught:
            activation.hash("meta", "shoe_size", "42")
        self.assertIn('unknown field "shoe_size"', str(caught.exception))

    def test_missing_platform_or_field_raises(self) -> None:
        with self.assertRaises(activation.InvalidArgumentError) as caught:
            activation.hash(None, "email", "a@b.com")  # type: ignore[arg-type]
        self.assertIn("platform is NULL", str(caught.exception))
        with self.assertRaises(activation.InvalidArgumentError) as caught:
            activation.hash("meta", None, "a@b.com")  # type: ignore[arg-type]
        self.assertIn("field is NULL", str(caught.exception))

    def test_invalid_default_region_raises(self) -> None:
        with self.assertRaises(activation.InvalidArgumentError):
            activation.hash("meta", "phone", "5551234", default_region="XX")


if __name__ == "__main__":
    unittest.main()
