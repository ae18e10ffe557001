// Starts GOV.UK Frontend's components (skip link, service navigation's menu button, error
// summary and notification banner focus, buttons against double submission). A module runs
// only in the browsers govuk-frontend supports, so it is the place to add the body class its
// CSS waits for; a static file, because the Content-Security-Policy allows no inline script.
import { initAll } from "/static/govuk/govuk-frontend.min.js";

document.body.classList.add("govuk-frontend-supported");
initAll();
