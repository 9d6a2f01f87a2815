// Package warm exists only during bootstrap.
package warm

import (
	_ "github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	_ "github.com/gorilla/rpc/v2"
	_ "github.com/jhillyerd/enmime"
	_ "github.com/microcosm-cc/bluemonday"
	_ "github.com/microsoft/kiota-http-go"
	_ "github.com/microsoftgraph/msgraph-sdk-go"
	_ "github.com/microsoftgraph/msgraph-sdk-go-core"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/rs/zerolog"
	_ "go.etcd.io/bbolt"
)
