/** The HTTP methods podscope names as they are (in request metrics and access lines); any other is "OTHER" or escaped. */
export const HTTP_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
