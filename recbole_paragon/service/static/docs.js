// The OpenAPI page: Swagger UI from the files of the pinned swagger-ui-py package, served by the service itself
// (no CDN, no validator badge: nothing leaves the machine).
"use strict";

window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#swagger-ui", validatorUrl: null, deepLinking: true });
});
