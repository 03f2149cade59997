// Tilt for `make tilt`. Tilt's own go.mod carries replace directives, which a consumer module must
// repeat (go install would refuse them).
module troupe.dev/tools/cluster/tilt

go 1.23.0

require github.com/tilt-dev/tilt v0.33.21

replace (
	github.com/emicklei/go-restful/v3 => github.com/emicklei/go-restful/v3 v3.9.0
	github.com/pkg/browser => github.com/tilt-dev/browser v0.0.1
	k8s.io/apimachinery => github.com/tilt-dev/apimachinery v0.31.0-tilt-20240902
)
