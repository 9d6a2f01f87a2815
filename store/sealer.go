package store

// Sealer seals values with the key file's key (AES-256-GCM), for store
// implementations outside this package (store/pgstore): secrets are sealed
// the same way wherever they are kept, and the key never reaches a
// database.
type Sealer struct{ s *sealer }

// NewSealer returns a Sealer for a KeySize-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	s, err := newSealer(key)
	if err != nil {
		return nil, err
	}
	return &Sealer{s}, nil
}

// Seal encrypts plain bound to ad (where it is kept: a secret's name, a
// mailbox id), so a sealed value moved elsewhere does not open.
func (s *Sealer) Seal(plain, ad []byte) []byte { return s.s.seal(plain, ad) }

// Open decrypts a sealed value; a wrong key or ad gives an error.
func (s *Sealer) Open(sealed, ad []byte) ([]byte, error) { return s.s.open(sealed, ad) }

// KeyCheck is the plain value a store seals at creation under the ad
// "key_check", to tell a wrong key at open before anything is written.
func KeyCheck() []byte { return append([]byte(nil), keyCheckPlain...) }

// Secret names: the ad under which each settings secret is sealed.
const (
	SecretAzureClientSecret = secretAzureClientSecret
	SecretAzureCertificate  = secretAzureCertificate
	SecretOdooAPIKey        = secretOdooAPIKey
)
