package traits

// ReservedKeys are the traits Segment's spec defines for identify calls (and so what SDKs,
// CSV templates and Salesforce mappings send): a computed trait may not take one of these
// keys, since the custom trait of that name would then be hidden or hide it.
var ReservedKeys = []string{
	"address", "age", "avatar", "birthday", "company", "createdAt", "description", "email",
	"firstName", "first_name", "gender", "id", "lastName", "last_name", "name", "phone", "title",
	"username", "website",
}
