package consoletest

import (
	"strings"
	"testing"

	"github.com/unifiedprofiles/up/shared/localstack"
	sfrest "github.com/unifiedprofiles/up/shared/salesforce/rest"
	"github.com/unifiedprofiles/up/shared/salesforce/sfake"
)

// The Salesforce and warehouse path: "Salesforce and a data warehouse" chosen in step 1, the
// warehouse source created, Connect Salesforce (the Salesforce source is created then), the
// browser's trip through the login host (the fake Salesforce) and the callback back to the
// page, which says the source is connected; the model form offers the ready models.
func TestSalesforcePath(t *testing.T) {
	t.Parallel()
	fake := sfake.New(t, sfake.Options{})
	s := newStackWith(t, func(cfg *localstack.Config) {
		cfg.Salesforce = &sfrest.OAuthApp{LoginURL: fake.LoginURL(), ClientID: fake.ClientID(), ClientSecret: fake.ClientSecret(), HTTP: fake.HTTPClient()}
	})
	c := newConsole(t, s, "salesforce")
	c.createWorkspace("Acme Sales")
	c.chooseSource("salesforce_warehouse", "Connect your data warehouse")
	if got := c.waitText("#salesforce-status", "not connected"); !strings.Contains(got, "not connected") {
		t.Errorf("status %q", got)
	}
	if n := c.eval(`document.querySelectorAll('#salesforce input[data-sf-object]:checked').length`); n != "3" {
		t.Errorf("%s objects checked, want Contact, Lead and Account", n)
	}
	c.set("#warehouse-type", "postgres")
	c.set("#warehouse-name", "Acme Postgres")
	c.expectError("/warehouse answered 404")
	c.click("#create-warehouse")
	c.waitFor("document.getElementById('wh-host') && document.getElementById('sf-warehouse')")
	c.labelled("#/setup/warehouse with Salesforce")

	// Connect: the browser goes to Salesforce's login and comes back connected.
	c.expectError("/warehouse answered 404")
	c.click("#connect-salesforce")
	c.waitText("#salesforce-result", "Salesforce is connected")
	status := c.waitText("#salesforce-status", fake.InstanceURL())
	if strings.Contains(status, "not connected") {
		t.Errorf("after connecting the status says %q", status)
	}
	c.waitText("#usage [data-usage=sources]", "2 of")

	// A ready model fills the model form.
	c.waitFor("document.getElementById('model-template')")
	c.eval(`const s = document.getElementById('model-template'); s.value = '0'; s.dispatchEvent(new Event('change')); true`)
	if name := c.eval(`document.getElementById('model-name').value`); name != `"Salesforce contacts"` {
		t.Errorf("the ready model's name is %s", name)
	}
	if sql := c.eval(`document.getElementById('model-sql').value`); !strings.Contains(sql, `\"salesforce\".\"contact\"`) {
		t.Errorf("the ready model's SQL is %s", sql)
	}
	c.shot("connected")

	// Step 4 judges the Salesforce source by its connection: connected, so not "not
	// connected"; its first sync decides the rest.
	_, items := c.check()
	sf := items["Salesforce"]
	if len(sf) < 3 || sf[0] != "salesforce_source" || sf[1] == "skipped" || strings.Contains(sf[2], "not connected") {
		t.Errorf("the check's Salesforce item: %q (items %q)", sf, items)
	}
	t.Logf("the check's Salesforce item: %q", sf)
	c.clean(fake.LoginURL())
}
